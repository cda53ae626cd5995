"""`coffre node ...`: serve a storage node, rebuild a device's index from its segments.

Rules: parsing only; the work lives in server.py and rebuild.py. Each subcommand returns an
exit code. The node listens where --listen says (127.0.0.1 in tests and the local cluster).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from storage import limits


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    node = sub.add_parser("node", help="storage node")
    node_sub = node.add_subparsers(dest="node_command", required=True)

    serve = node_sub.add_parser("serve", help="serve devices over the internal HTTP API")
    serve.add_argument("--listen", required=True, help="HOST:PORT")
    serve.add_argument("--device", action="append", required=True, metavar="ID=PATH",
                       help="a device id (as in the ring) and its directory; repeatable")
    serve.add_argument("--capacity-bytes", type=int, default=None,
                       help="per-device capacity; writes past it fail like a full disk")
    serve.add_argument("--rings-dir", type=Path, default=None)
    serve.add_argument("--orphan-grace-s", type=float, default=None,
                       help="unreferenced fragments younger than this are kept (default 1 h)")
    serve.add_argument("--segment-size-bytes", type=int, default=limits.segment_size_bytes_max)
    serve.add_argument("--no-background", action="store_true",
                       help="do not run compaction and scrubbing")
    serve.set_defaults(func=serve_command)

    rebuild = node_sub.add_parser("rebuild-index",
                                  help="rebuild a device's LMDB index from its segments")
    rebuild.add_argument("--device", required=True, type=Path, metavar="PATH")
    rebuild.set_defaults(func=rebuild_command)


def _parse_devices(specs: list[str]) -> dict[int, Path]:
    devices: dict[int, Path] = {}
    for spec in specs:
        dev_id, sep, path = spec.partition("=")
        if not sep or not (dev_id.isascii() and dev_id.isdigit()) or not path:
            raise SystemExit(f"bad --device {spec!r}: expected ID=PATH")
        devices[int(dev_id)] = Path(path)
    return devices


def _parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()):
        raise SystemExit(f"bad --listen {text!r}: expected HOST:PORT")
    return host or "127.0.0.1", int(port)


def serve_command(args: argparse.Namespace) -> int:
    from storage import malloc
    from storage.node import Node, NodeConfig

    malloc.tune()

    config = NodeConfig(devices=_parse_devices(args.device), rings_dir=args.rings_dir,
                        capacity_bytes=args.capacity_bytes,
                        orphan_grace_s=args.orphan_grace_s,
                        segment_size_bytes=args.segment_size_bytes)
    host, port = _parse_listen(args.listen)
    loop_factory = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop  # faster loop and sockets; asyncio works too
    except ImportError:
        pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_serve(Node(config), host, port, background=not args.no_background))
    return 0


async def _serve(node: object, host: str, port: int, *, background: bool) -> None:
    from aiohttp import web

    from storage.node import Node
    from storage.server import listen, make_app

    assert isinstance(node, Node)
    app = make_app(node, background=background)
    # A SIGTERM drains in-flight calls for at most this long, then cancels what is left (a
    # stream whose peer stopped reading): stopping must not hang on one client. CI saw a node
    # outlive aiohttp's default 60 s under load.
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           shutdown_timeout=limits.shutdown_drain_s)
    await runner.setup()
    from storage import pygc
    pygc.tune()     # before the port opens: its collection pauses no call
    server = await listen(runner, host, port)
    print(f"coffre node listening on http://{host}:{port}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()  # no new connections; the open ones drain in cleanup
    await runner.cleanup()  # finishes in-flight requests, then closes the devices


def rebuild_command(args: argparse.Namespace) -> int:
    from storage.rebuild import rebuild_index

    stats = rebuild_index(args.device)
    print(json.dumps(stats, indent=2))
    return 0
