"""Command line: ``python -m fastopt config`` (more subcommands join as they are built)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastopt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("config", help="print the build and runtime configuration")
    args = parser.parse_args(argv)
    if args.command == "config":
        import fastopt

        fastopt.show_config()
    return 0


if __name__ == "__main__":
    sys.exit(main())
