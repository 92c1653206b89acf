"""Print the stub lines of the boundary functions that src/fastopt/_kernels.pyi lacks.

    python setup.py build_ext --inplace && PYTHONPATH=src python tools/make_kernels_stub.py

The stub is generated at build time from src/fastopt/_kernels.pyi.tp: the optimizer
families' functions from their table, every other function from the lines listed in the
template by hand. After adding a boundary function, run this and paste its output into the
template. Cython embeds each def function's signature in its docstring
(embedsignature=True); the printed lines carry the real argument names.
"""

import os
import re

import fastopt._kernels as kernels

RETURNS = {
    "get_num_threads": "int", "last_threads_used": "int", "planned_threads": "int",
    "build_info": "dict[str, Any]", "dot": "float", "norm_reduce": "float",
    "all_finite": "bool", "set_num_threads": "None", "scale_": "None", "sgd_step": "None",
    "adam_step": "None", "adagrad_step": "None", "rmsprop_step": "None",
    "adadelta_step": "None", "_set_user_threads": "None",
    "_get_user_threads": "int", "_max_threads": "int", "_init_thread_policy": "None",
    "_load_state": "dict[str, Any]", "_load_adapt": "int",
    "check_dropout_p": "float", "stream_copy": "None", "stream_triad": "None",
}


def stub_line(name: str, obj: object) -> str:
    first = (obj.__doc__ or "").split("\n")[0]
    match = re.match(rf"{re.escape(name)}\((.*)\)", first)
    if not match:
        return f"def {name}(*args: Any, **kwargs: Any) -> Any: ..."
    params = []
    for part in re.split(r",\s*(?![^()]*\))", match.group(1)):
        part = part.strip()
        if not part:
            continue
        if part == "*":
            params.append("*")
            continue
        part = re.sub(r"^(int|long long|str|double|bint|bool|list|object)\s+", "", part)
        pname, _, default = part.partition("=")
        params.append(f"{pname.strip()}: Any" + (" = ..." if default else ""))
    return f"def {name}({', '.join(params)}) -> {RETURNS.get(name, 'Any')}: ..."


def main() -> None:
    import re

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "src", "fastopt", "_kernels.pyi")
    with open(path) as f:
        declared = set(re.findall(r"^(?:def|class) (\w+)", f.read(), flags=re.M))
    missing = []
    for name in sorted(dir(kernels)):
        if name.startswith("__") or name in declared:
            continue
        obj = getattr(kernels, name)
        if isinstance(obj, type):
            missing += [f"class {name}:",
                        "    def __init__(self, *args: Any, **kwargs: Any) -> None: ...",
                        "    def __getattr__(self, name: str) -> Any: ...", ""]
        elif callable(obj):
            missing.append(stub_line(name, obj))
    print("\n".join(missing) if missing else f"{path} declares every boundary function")


if __name__ == "__main__":
    main()
