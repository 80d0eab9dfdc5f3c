"""python -m seqcore {demo,info}: "demo" trains a forecaster on a real time series and compares it
with naive forecasts (python -m seqcore demo --help); "info" prints the version, the SIMD level in
use, the thread count and the build profile."""

from __future__ import annotations

import argparse
import sys

from . import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m seqcore", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    cli.add_demo_parser(sub)
    sub.add_parser("info", help="print version, SIMD level in use, thread count and build profile")
    args = parser.parse_args(argv)
    if args.command == "info":
        return cli.run_info()
    return cli.run_demo(args)


if __name__ == "__main__":
    sys.exit(main())
