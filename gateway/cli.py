"""`coffre`: the one console script. Each package adds the subcommands it drives."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import sys

from gateway import config as config_mod
from gateway import logs


def _gateway(args: argparse.Namespace) -> int:
    cfg = config_mod.load(args.config, args.data)
    if args.listen:
        cfg = dataclasses.replace(cfg, listen=args.listen)
    listen = cfg.listen
    host, port = listen.rsplit(":", 1)
    from gateway.server import make_app  # heavy imports only for the server itself
    from storage import malloc, pygc

    malloc.tune()

    async def serve() -> None:
        from aiohttp import web

        from gateway import abuse
        app = make_app(cfg)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=10.0,
                               **abuse.runner_kwargs(cfg.abuse))
        await runner.setup()
        pygc.tune()     # before the port opens: its collection pauses no request
        site = abuse.GuardedSite(runner, app[abuse.ABUSE], host, int(port), reuse_port=True,
                                 backlog=1024)
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()

    _run(serve())
    return 0


def _run(coro: object) -> None:
    try:
        import uvloop
        uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:
        asyncio.run(coro)  # type: ignore[arg-type]


def _up(args: argparse.Namespace) -> int:
    from gateway.up import run
    return run(config_mod.load(args.config, args.data), args.config)


def build_parser() -> argparse.ArgumentParser:
    from gateway.admin_cli import add_commands as admin_commands
    from gateway.status import add_commands as status_commands
    from ring.cli import add_commands as ring_commands
    from storage.cli import add_commands as node_commands
    from storage.rebalance_cli import add_commands as rebalance_commands

    parser = argparse.ArgumentParser(prog="coffre", description="Coffre object store")
    logs.add_arguments(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a local cluster (nodes + gateway)")
    up.add_argument("--config", default="conf/local.toml")
    up.add_argument("--data", default=None, help="data root (default: COFFRE_DATA or config)")
    up.set_defaults(func=_up)
    gw = sub.add_parser("gateway", help="run one S3 gateway process")
    gw.add_argument("--config", default="conf/local.toml")
    gw.add_argument("--data", default=None)
    gw.add_argument("--listen", default=None, help="HOST:PORT (default from config)")
    gw.set_defaults(func=_gateway)
    ring_commands(sub)
    node_commands(sub)
    status_commands(sub)
    admin_commands(sub)
    rebalance_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup_from_args(args)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
