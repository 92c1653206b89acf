"""Command line: ``python -m fastopt demo`` (the main job), ``python -m fastopt config`` and
``python -m fastopt bench``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastopt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    from fastopt import demo

    demo_parser = sub.add_parser("demo", help="six optimizers on one network: a table and a figure",
                                 description=demo.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_arguments(demo_parser)
    sub.add_parser("config", help="print the build and runtime configuration")
    from fastopt import bench

    bench_parser = sub.add_parser(
        "bench", help="time the kernels against numpy, torch and the memory-bandwidth limit",
        description=bench.__doc__.split("\n\n")[0])
    bench.add_arguments(bench_parser)
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo.run_from_args(args)
    if args.command == "config":
        import fastopt

        fastopt.show_config()
    elif args.command == "bench":
        return bench.command(args, bench_parser)
    return 0


if __name__ == "__main__":
    sys.exit(main())
