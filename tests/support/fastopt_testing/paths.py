"""Where the checkout's parts are, for tests in any folder of tests/."""

from pathlib import Path

SUPPORT = Path(__file__).resolve().parent.parent   # tests/support: on pythonpath
TESTS = SUPPORT.parent
ROOT = TESTS.parent
DATA = TESTS / "data"                              # recorded torch outputs
CSRC = ROOT / "csrc"
README = ROOT / "README.md"
