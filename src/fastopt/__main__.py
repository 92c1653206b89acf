"""Command line: ``python -m fastopt demo`` (the main job), ``python -m fastopt config`` and
``python -m fastopt bench``; ``python -m fastopt --version``."""

from __future__ import annotations

import argparse
import os
import sys

from fastopt._version import __version__

CONFIG_HELP = """\
Without options: print the build and runtime configuration (fastopt.show_config()).
With --cflags and/or --libs: print the flags that compile and link a C program against
fastopt's headers and static library, in pkg-config's style, from the installed
fastopt.pc:

    cc prog.c $(python -m fastopt config --cflags --libs) -o prog

--pkgconfigdir prints the directory of fastopt.pc, for PKG_CONFIG_PATH."""


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cflags", action="store_true",
                        help="compile flags (-I of the headers)")
    parser.add_argument("--libs", action="store_true",
                        help="link flags (the static library, OpenMP, libm)")
    parser.add_argument("--pkgconfigdir", action="store_true",
                        help="the directory holding fastopt.pc")


def config_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import fastopt
    from fastopt import _pkgconfig

    if not (args.cflags or args.libs or args.pkgconfigdir):
        fastopt.show_config()
        return 0
    if args.pkgconfigdir and (args.cflags or args.libs):
        parser.error("--pkgconfigdir prints a directory: use it alone")
    try:
        pc_dir = os.path.join(fastopt.get_library_dir(), "pkgconfig")
    except FileNotFoundError as exc:
        print(f"python -m fastopt config: {exc}", file=sys.stderr)
        return 1
    if args.pkgconfigdir:
        print(pc_dir)
        return 0
    pc_file = os.path.join(pc_dir, "fastopt.pc")
    words = []
    if args.cflags:
        words += _pkgconfig.flags(pc_file, "Cflags")
    if args.libs:
        words += _pkgconfig.flags(pc_file, "Libs")
    print(" ".join(words))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastopt", description=__doc__)
    parser.add_argument("--version", action="version", version=f"fastopt {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    from fastopt import demo

    demo_parser = sub.add_parser("demo", help="six optimizers on one network: a table and a figure",
                                 description=demo.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_arguments(demo_parser)
    config_parser = sub.add_parser(
        "config", help="print the build and runtime configuration, or compile/link flags",
        description=CONFIG_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(config_parser)
    from fastopt import bench

    bench_parser = sub.add_parser(
        "bench", help="time the kernels against numpy, torch and the memory-bandwidth limit",
        description=bench.__doc__.split("\n\n")[0])
    bench.add_arguments(bench_parser)
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo.run_from_args(args)
    if args.command == "config":
        return config_command(args, config_parser)
    if args.command == "bench":
        return bench.command(args, bench_parser)
    return 0


if __name__ == "__main__":
    sys.exit(main())
