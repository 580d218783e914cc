"""`harness playground`: the page where both engines learn a 2-D problem side by side."""

from __future__ import annotations

import argparse

from harness.cli.common import bounded

NAME = "playground"
HELP = "an interactive page where both engines learn a 2-D problem side by side"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=bounded(1, 65535), default=8765, help="port to serve the page on (default: 8765)")


def run(args: argparse.Namespace) -> int:
    from harness import playground
    from harness.tracking.ui import UIError, port_free

    if not port_free(args.host, args.port):
        raise UIError(f"port {args.port} on {args.host} is in use (another playground?): stop it or pick "
                      "another with --port")
    try:
        playground.serve(args.host, args.port)
    except KeyboardInterrupt:
        print("harness playground: stopped")
    return 0
