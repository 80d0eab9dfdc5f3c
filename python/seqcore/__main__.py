"""``python -m seqcore {demo,info}``."""

from __future__ import annotations

import argparse
import sys

from . import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seqcore", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    cli.add_demo_parser(sub)
    sub.add_parser("info", help="print version, SIMD level, threads and build profile")
    args = parser.parse_args(argv)
    if args.command == "info":
        return cli.run_info()
    return cli.run_demo(args)


if __name__ == "__main__":
    sys.exit(main())
