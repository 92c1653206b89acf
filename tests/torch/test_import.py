"""torch stays optional: ``import fastopt`` never imports it, and ``import fastopt.torch``
without it fails with a message that says how to install it (runs with or without torch)."""

import os
import subprocess
import sys


def _run(code):
    env = dict(os.environ)
    import fastopt  # the tests' fastopt: a source tree's src/, or the installed package

    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(fastopt.__file__)) + os.pathsep \
        + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)


def test_import_fastopt_does_not_import_torch():
    out = _run("import sys, fastopt, fastopt.checkpoint, fastopt.torch_state\n"
               "print('torch' in sys.modules)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_fastopt_torch_without_torch_names_the_install_command():
    out = _run("import sys\nsys.modules['torch'] = None  # as if torch were not installed\n"
               "try:\n    import fastopt.torch\nexcept ModuleNotFoundError as e:\n"
               "    print(e.name, e)\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("torch ") and "pip install torch==2.13.0" in out.stdout
