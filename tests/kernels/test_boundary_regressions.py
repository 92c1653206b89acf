"""Regression tests for boundary bugs the fuzzer (test_fuzz.py) found, one test per bug."""

import numpy as np
import pytest

import fastopt
from fastopt import _kernels
from fastopt.kernels import sgd_step
from fastopt_testing.arrays import snapshot


@pytest.mark.parametrize("value", [10**400, -(10**400)])
def test_huge_int_hyperparameter_is_a_value_error_not_overflow(value):
    # was: OverflowError("int too large to convert to float") from float(value)
    p = np.ones(3)
    with pytest.raises(ValueError, match="^lr: "):
        sgd_step(p, np.ones(3), lr=value)
    assert (p == 1).all()


@pytest.mark.parametrize("name", ["lr", "momentum", "weight_decay", "l1"])
@pytest.mark.parametrize("value", [np.inf, np.float32(np.inf), np.longdouble("1e4000")])
def test_infinite_hyperparameter_message_names_that_argument(name, value):
    # was: "lr, momentum, weight_decay and l1 must be finite" for any of the four
    kwargs = {"lr": 0.1, name: value}
    with pytest.raises(ValueError, match=f"^{name}: expected a finite number"):
        sgd_step(np.ones(3), np.ones(3), np.zeros(3), **kwargs)


@pytest.mark.parametrize("bad, exc", [(1.5, TypeError), (np.ones(4), ValueError),
                                      (np.ones(3, np.int64), TypeError)])
def test_buf_is_checked_even_when_momentum_is_zero(bad, exc):
    # was: silently ignored, so a wrong buffer went unnoticed until momentum was turned on
    p = np.ones(3)
    with pytest.raises(exc, match="^buf"):
        sgd_step(p, np.ones(3), bad, lr=0.1)
    assert (p == 1).all()
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="^buf: expected a writeable"):
        sgd_step(p, np.ones(3), ro, lr=0.1)
    sgd_step(p, np.ones(3), np.full(3, 7.0), lr=0.5)  # a valid buf is left alone
    np.testing.assert_array_equal(p, 0.5)


def test_bad_grad_in_a_later_group_modifies_nothing():
    # was: group 0 was updated, then group 1's bad gradient raised
    a, b = np.zeros(3), np.zeros(3)
    opt = fastopt.SGD([{"params": [a]}, {"params": [b]}], lr=0.1)
    with pytest.raises(ValueError, match=r"^grads\[1\]: expected shape \(3,\)"):
        opt.step([np.ones(3), np.ones(4)])
    assert (a == 0).all() and (b == 0).all()
    assert [g["step"] for g in opt.param_groups] == [0, 0]


def test_bad_grad_does_not_lose_a_momentum_buffer():
    # was: SGD stepped the params whose buffers are new (first call), then the other call
    # raised: b had moved but its new momentum buffer was never stored (corrupt state)
    a, b = np.zeros(3), np.zeros(3)
    opt = fastopt.SGD([a, b], lr=0.1, momentum=0.9)
    opt.step([np.ones(3), None])
    before = snapshot([a, b])
    with pytest.raises(ValueError, match=r"^grads\[0\]"):
        opt.step([np.ones(4), np.ones(3)])
    assert snapshot([a, b]) == before
    assert set(opt.state) == {0}


def test_schedule_with_a_bad_lr_in_a_later_group_modifies_nothing():
    a, b = np.zeros(3), np.zeros(3)
    opt = fastopt.SGD([{"params": [a]},
                       {"params": [b], "lr": lambda step: 0.1 if step == 0 else -1.0}], lr=0.1)
    opt.step([np.ones(3), np.ones(3)])
    before = snapshot([a, b])
    with pytest.raises(ValueError, match="^lr: "):
        opt.step([np.ones(3), np.ones(3)])
    assert snapshot([a, b]) == before
    assert [g["step"] for g in opt.param_groups] == [1, 1]


def test_step_errors_name_grads_by_the_users_index():
    # was: "g[0]: ..." (the kernel's argument, indexed within the group's non-None grads)
    ps = [np.zeros(2), np.zeros(3), np.zeros(4)]
    opt = fastopt.SGD(ps, lr=0.1)
    with pytest.raises(TypeError, match=r"^grads\[2\]: expected dtype float64"):
        opt.step([None, np.ones(3), np.ones(4, np.float32)])
    with pytest.raises(TypeError, match=r"^grads\[1\]: expected a numpy array"):
        opt.step([None, [1.0, 2.0, 3.0], None])
    with pytest.raises(ValueError, match=r"^grads: expected 3 gradients"):
        opt.step([np.ones(2)])
    with pytest.raises((TypeError, ValueError), match=r"^grads"):
        opt.step({0: np.ones(2)})


def test_grad_sharing_memory_with_a_param_of_another_group_is_refused():
    # was: accepted; group 1 then read a gradient that group 0 had just updated
    a, b = np.ones(3), np.ones(3)
    opt = fastopt.SGD([{"params": [a]}, {"params": [b]}], lr=0.5)
    with pytest.raises(ValueError, match=r"^grads\[1\]: shares memory with"):
        opt.step([np.ones(3), a])
    assert (a == 1).all() and (b == 1).all()


def test_grad_sharing_memory_with_optimizer_state_is_refused():
    a, b = np.ones(3), np.ones(3)
    opt = fastopt.SGD([{"params": [a]}, {"params": [b]}], lr=0.5, momentum=0.9)
    opt.step([np.ones(3), np.ones(3)])
    buf = opt.state[0]["momentum_buffer"]
    with pytest.raises(ValueError, match=r"^grads\[1\]: shares memory with"):
        opt.step([np.ones(3), buf])


def test_a_non_contiguous_grad_is_copied_before_any_group_runs():
    a = np.ones(6)
    b = np.ones(3)
    opt = fastopt.SGD([{"params": [a]}, {"params": [b]}], lr=0.5)
    opt.step([np.ones(6), a[::2]])  # b's gradient is a strided view of a: read before a moves
    np.testing.assert_array_equal(b, 0.5)
    np.testing.assert_array_equal(a, 0.5)


def test_array_valued_hyperparameter_names_it():
    # was: "The truth value of an array ... is ambiguous" from SGD's own `momentum == 0`
    with pytest.raises(TypeError, match="^momentum: expected a real number"):
        fastopt.SGD([np.zeros(2)], momentum=np.array([0.5, 0.5]))


def test_edited_param_group_options_are_checked_before_anything_moves():
    a, b = np.zeros(2), np.zeros(2)
    opt = fastopt.SGD([{"params": [a]}, {"params": [b]}], lr=0.1)
    opt.param_groups[1]["momentum"] = "0.9"
    with pytest.raises(TypeError, match="^momentum"):
        opt.step([np.ones(2), np.ones(2)])
    assert (a == 0).all() and (b == 0).all()


def test_zero_d_byteswapped_grad_keeps_its_shape():
    # was: the boundary's np.ascontiguousarray copy turned a 0-d grad into shape (1,)
    p = np.array(1.0)
    opt = fastopt.SGD([p], lr=0.5)
    opt.step([np.array(1.0, ">f8")])
    assert p.shape == () and p == 0.5
    sgd_step(p, np.array(1.0, ">f8"), lr=0.5)
    assert p == 0.0


@pytest.mark.parametrize("n", [2**70, -(2**70), np.int64(2**62)])
def test_huge_thread_counts_do_not_overflow(n):
    # was: OverflowError("Python int too large to convert to C long")
    if n > 0:
        fastopt.set_num_threads(n)
        assert fastopt.get_num_threads() >= 1
    else:
        with pytest.raises(ValueError, match="^n: "):
            fastopt.set_num_threads(n)


@pytest.mark.parametrize("bad, exc", [(2**70, None), (-1, ValueError), (1.5, TypeError),
                                      ("3", TypeError), (True, TypeError)])
def test_planned_threads_checks_its_argument(bad, exc):
    # was: OverflowError for huge counts, a silent 1 for negative ones
    if exc is None:
        assert _kernels.planned_threads(bad) >= 1
    else:
        with pytest.raises(exc, match="^total_elements"):
            _kernels.planned_threads(bad)


def test_overlap_message_names_both_arrays():
    buf = np.zeros(10)
    p, g = buf[:6], buf[4:]
    with pytest.raises(ValueError, match=r"^g: shares memory with p\b"):
        sgd_step(p, g, lr=0.1)
    ps = [np.zeros(3), np.zeros(3)]
    with pytest.raises(ValueError, match=r"^buf\[1\]: shares memory with p\[0\]"):
        sgd_step(ps, [np.ones(3)] * 2, [np.zeros(3), ps[0]], lr=0.1, momentum=0.9)


@pytest.mark.parametrize("seed", range(5))
def test_overlap_found_among_many_arrays_in_any_address_order(seed):
    # the spans are sorted by a radix sort on the address bytes (was qsort): views of one
    # buffer in scrambled order, one pair overlapping, others only touching end to start
    rng = np.random.default_rng(seed)
    n = 300
    buf = np.zeros(3 * n * 8)
    views = [buf[8 * k:8 * k + 8] for k in range(3 * n)]  # adjacent, disjoint
    order = rng.permutation(3 * n)
    ps = [views[k] for k in order[:n]]
    gs = [views[k] for k in order[n:2 * n]]
    bufs = [views[k] for k in order[2 * n:]]
    sgd_step(ps, gs, bufs, lr=0.1, momentum=0.9)  # touching spans do not overlap
    j = int(rng.integers(n))
    k = int(rng.integers(n))
    clash = buf[8 * order[k] + 4:8 * order[k] + 12]  # half of p[k] and half of its neighbour
    bufs[j] = clash
    before = buf.copy()
    with pytest.raises(ValueError, match=r"^buf\[\d+\]: shares memory with "):
        sgd_step(ps, gs, bufs, lr=0.1, momentum=0.9)
    np.testing.assert_array_equal(buf, before)  # nothing modified


def test_scale_factor_huge_int_is_inf_not_overflow():
    # was: OverflowError from float(factor) (scale_ allows inf and NaN factors)
    x = np.ones(3)
    _kernels.scale_(x, 10**400)
    assert (x == np.inf).all()
    with pytest.raises(TypeError, match="^factor: "):
        _kernels.scale_(x, "2")


def test_state_dict_snapshots_a_stateful_schedule():
    # found by test_resume: state_dict() kept the ReduceLROnPlateau object itself, so a
    # checkpoint taken at step k followed the run and restored a later schedule state
    sched = fastopt.schedules.ReduceLROnPlateau(0.1, patience=0, factor=0.5)
    opt = fastopt.SGD([np.zeros(2)], lr=sched)
    sd = opt.state_dict()
    for metric in (3.0, 4.0, 5.0):
        opt.param_groups[0]["lr"].update(metric)
    assert sd["param_groups"][0]["lr"](0) == 0.1
    fresh = fastopt.SGD([np.zeros(2)], lr=0.1)
    fresh.load_state_dict(sd)
    fresh.param_groups[0]["lr"].update(1.0)
    fresh.param_groups[0]["lr"].update(2.0)
    assert sd["param_groups"][0]["lr"](0) == 0.1  # loading copies too


def test_clip_grad_norm_huge_int_max_norm_is_inf():
    # was: OverflowError from fastopt.train's float(max_norm)
    g = [np.array([3.0]), np.array([4.0])]
    assert fastopt.clip_grad_norm(g, 10**400) == 5.0
    assert g[0][0] == 3.0 and g[1][0] == 4.0
    with pytest.raises(ValueError, match="^max_norm"):
        fastopt.clip_grad_norm(g, -(10**400))


@pytest.mark.parametrize("flag", [1, "yes", None])
def test_clip_grad_norm_checks_error_if_nonfinite(flag):
    # was: any truthy value accepted
    g = np.array([np.inf, 1.0])
    with pytest.raises(TypeError, match="^error_if_nonfinite"):
        fastopt.clip_grad_norm(g, 1.0, error_if_nonfinite=flag)
    assert g[0] == np.inf and g[1] == 1.0


def test_clip_grad_norm_error_if_nonfinite_modifies_nothing():
    g = [np.array([np.nan, 1.0]), np.ones(3, np.float32)]
    before = snapshot(g)
    with pytest.raises(FloatingPointError):
        fastopt.clip_grad_norm(g, 1.0, error_if_nonfinite=True)
    assert snapshot(g) == before


def _unaligned(a):
    raw = np.empty(a.nbytes + 1, np.uint8)
    view = raw[1:].view(a.dtype).reshape(a.shape)
    view[...] = a
    assert not view.flags.aligned
    return view


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unaligned_inputs_are_copied_to_aligned_memory(dtype):
    # was: np.ascontiguousarray keeps an unaligned C-contiguous array as it is, so the C
    # kernels read misaligned floats (UBSan: "load of misaligned address" in
    # batchnorm.inc), and batch_norm_backward refused the cache of an unaligned forward
    x = np.random.default_rng(0).standard_normal((6, 5)).astype(dtype)
    xu = _unaligned(x)
    y, cache = fastopt.nn.batch_norm(xu, None, None, None, None)
    dx, _, _ = fastopt.nn.batch_norm_backward(_unaligned(np.ones_like(x)), cache)
    y2, cache2 = fastopt.nn.batch_norm(x, None, None, None, None)
    dx2, _, _ = fastopt.nn.batch_norm_backward(np.ones_like(x), cache2)
    assert y.tobytes() == y2.tobytes() and dx.tobytes() == dx2.tobytes()
    assert cache.x.flags.aligned
    assert _kernels.dot(xu.ravel(), xu.ravel()) == _kernels.dot(x.ravel(), x.ravel())
    assert fastopt.kernels.all_finite(xu)
    a, b = fastopt.nn.dropout(xu, 0.5, seed=3)[0], fastopt.nn.dropout(x, 0.5, seed=3)[0]
    assert a.tobytes() == b.tobytes()


def test_zero_d_byteswapped_dropout_input_keeps_its_shape():
    # was: y of shape (1,) for a 0-d input (np.ascontiguousarray)
    y, mask = fastopt.nn.dropout(np.array(2.0, ">f8"), 0.5, seed=1)
    assert y.shape == () and mask.shape == ()
    dx = fastopt.nn.dropout_backward(np.array(1.0, ">f4"), mask, out=np.zeros((), np.float32))
    assert dx.shape == ()


@pytest.mark.parametrize("kwargs, exc, name", [
    (dict(seed=-1), ValueError, "seed"), (dict(seed=1.5), TypeError, "seed"),
    (dict(stream=2**64), ValueError, "stream"), (dict(training="no"), TypeError, "training"),
])
@pytest.mark.parametrize("p, training", [(0.0, True), (0.5, False)])
def test_dropout_checks_arguments_it_does_not_use_this_time(kwargs, exc, name, p, training):
    # was: with training=False or p=0 a bad seed/stream was accepted, and training was
    # only tested for truth (training="no" trained)
    x = np.ones(4)
    call = {"training": training, "seed": 1, "stream": 0, **kwargs}
    with pytest.raises(exc, match=f"^{name}: "):
        fastopt.nn.dropout(x, p, call.pop("training"), call.pop("seed"), **call)


def test_dropout_out_partly_overlapping_x_is_refused_when_not_training():
    # was: training=False/p=0 copied x into a partly overlapping out (training=True raised)
    buf = np.arange(10.0)
    for p, training in ((0.0, True), (0.5, False), (0.5, True)):
        x, out = buf[:6], buf[2:8]
        before = buf.copy()
        with pytest.raises(ValueError, match="shares memory"):
            fastopt.nn.dropout(x, p, training, 1, out)
        assert (buf == before).all()
    y, _ = fastopt.nn.dropout(buf, 0.5, False, 1, buf)  # exactly in place is fine
    assert y is buf


@pytest.mark.parametrize("kwargs, name", [(dict(count=2**70, newest=0), "count"),
                                          (dict(count=1, newest=2**70), "newest"),
                                          (dict(count=np.uint64(2**64 - 1), newest=0), "count")])
def test_lbfgs_two_loop_huge_counts_are_value_errors(kwargs, name):
    # was: OverflowError("Python int too large to convert to C long")
    S, Y, rho, g = np.eye(3, 4), 2 * np.eye(3, 4), np.full(3, 0.5), np.ones(4)
    with pytest.raises(ValueError, match=f"^{name}: "):
        _kernels.lbfgs_two_loop(g, S, Y, rho, 1.0, **kwargs)


@pytest.mark.parametrize("rows", [[0.5], ["1"], [2**70]])
def test_lbfgs_rows_must_be_integers(rows):
    # was: [0.5] silently truncated to row 0; "1" and 2**70 gave numpy's own errors
    S, Y, g = np.eye(3, 4), 2 * np.eye(3, 4), np.ones(4)
    with pytest.raises(TypeError, match="^rows: "):
        _kernels.lbfgs_gram(S, Y, rows, None, g)


def test_lbfgs_rho_of_another_dtype_is_a_type_error():
    S, Y, g = np.eye(3, 4), 2 * np.eye(3, 4), np.ones(4)
    with pytest.raises(TypeError, match="^rho: "):
        _kernels.lbfgs_two_loop(g, S, Y, np.full(3, 0.5, np.float32), 1.0, 1, 0)
    with pytest.raises(ValueError, match="^rho: "):
        _kernels.lbfgs_two_loop(g, S, Y, np.full(4, 0.5), 1.0, 1, 0)


def test_axpy_overlap_message_names_the_output_it_writes():
    # was: "out: overlaps x or y ..." when no out was passed (y is written)
    buf = np.zeros(10)
    with pytest.raises(ValueError, match="^y: overlaps x"):
        _kernels.axpy(1.0, buf[:6], buf[2:8])
    with pytest.raises(ValueError, match="^out: overlaps y"):
        _kernels.axpy(1.0, np.ones(6), buf[:6], out=buf[2:8])


def test_layer_checkpoints_fail_with_type_or_value_errors():
    # was: KeyError for a missing entry; Dropout took seed=1.5 as 1 and any int() of a
    # string; BatchNorm took a negative num_batches_tracked
    d = fastopt.nn.Dropout(0.5, seed=3)
    with pytest.raises(ValueError, match=r"^state: expected the keys \['stream'\], which are missing"):
        d.load_state_dict({"p": 0.5, "seed": 1})
    with pytest.raises(TypeError, match=r"^state\['seed'\]"):
        d.load_state_dict({"p": 0.5, "seed": 1.5, "stream": 0})
    bn = fastopt.nn.BatchNorm(2)
    sd = bn.state_dict()
    with pytest.raises(ValueError, match=r"^state: expected the keys \['running_var'\], which"):
        bn.load_state_dict({k: v for k, v in sd.items() if k != "running_var"})
    with pytest.raises(ValueError, match=r"^state\['num_batches_tracked'\]"):
        bn.load_state_dict(dict(sd, num_batches_tracked=-1))


@pytest.mark.parametrize("kwargs, exc, name", [
    (dict(seed=-1), ValueError, "seed"), (dict(seed=2**64), ValueError, "seed"),
    (dict(pack="no"), TypeError, "pack")])
def test_dropout_layer_checks_its_arguments_at_construction(kwargs, exc, name):
    # was: accepted, failing only at the first training forward (seed) or never (pack)
    with pytest.raises(exc, match=f"^{name}: "):
        fastopt.nn.Dropout(0.5, **{"seed": 1, **kwargs})


def test_batchnorm_affine_must_be_a_bool():
    # was: bool(affine), so affine="no" made an affine layer
    with pytest.raises(TypeError, match="^affine: "):
        fastopt.nn.BatchNorm(3, affine="no")


def test_adagrad_huge_int_initial_accumulator_is_a_value_error():
    """Found by the thorough fuzz profile: 10**400 passed `0 <= v < inf` (an int compares
    with inf) and only failed later, converting to float."""
    p = np.zeros(3, np.float32)
    for bad in (10**400, -(10**400)):
        with pytest.raises(ValueError, match="initial_accumulator_value"):
            fastopt.Adagrad([p], initial_accumulator_value=bad)
    assert fastopt.Adagrad([p], initial_accumulator_value=10**30).param_groups[0][
        "initial_accumulator_value"] == 10**30
