"""`harness report`: write results/ (report.md and its plots) from the tracking store."""

from __future__ import annotations

import argparse

from harness.cli.common import add_tracking_uri

NAME = "report"
HELP = "write results/ from the tracking store"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bench-id", help="which bench (default: the newest in the store)")
    p.add_argument("--out", default="results", help="folder to write (default: results)")
    add_tracking_uri(p)


def run(args: argparse.Namespace) -> int:
    from harness import report

    report.build(args.bench_id, args.out, args.tracking_uri)
    return 0
