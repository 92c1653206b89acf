"""Array helpers shared by the tests."""


def snapshot(arrays):
    """Byte copies of arrays, to prove a raising call modified nothing."""
    return [a.tobytes() for a in arrays]


def assert_same_state(s1, s2):
    """Two optimizers' state_dict()["state"] hold the same arrays, bit for bit (a
    low-precision state's dict entry by entry)."""
    import numpy as np

    assert s1.keys() == s2.keys()
    for k in s1:
        assert s1[k].keys() == s2[k].keys()
        for name, v in s1[k].items():
            w = s2[k][name]
            for key in (v if isinstance(v, dict) else [None]):
                np.testing.assert_array_equal(v if key is None else v[key],
                                              w if key is None else w[key], err_msg=name)
