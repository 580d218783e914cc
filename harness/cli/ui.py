"""`harness ui`: the MLflow UI on 127.0.0.1 for the tracking store."""

from __future__ import annotations

import argparse

from harness.cli.common import add_tracking_uri, bounded

NAME = "ui"
HELP = "start the MLflow UI on 127.0.0.1 for the tracking store"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=bounded(1, 65535), default=5000,
                   help="port on 127.0.0.1 to serve the UI on (default: 5000)")
    add_tracking_uri(p)


def run(args: argparse.Namespace) -> int:
    from harness import tracking
    from harness.tracking import ui

    try:
        ui.serve(tracking.resolve_uri(args.tracking_uri), "127.0.0.1", args.port)
    except KeyboardInterrupt:
        print("harness ui: stopped")
    return 0
