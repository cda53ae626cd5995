"""`python -m storage node ...`: the node's subcommands without the `coffre` front end
(tests and crash tests start nodes this way, independent of gateway/cli.py)."""

from __future__ import annotations

import argparse
import sys

from storage.cli import add_commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m storage")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
