"""`harness report`: write results/ (report.md and its plots) from the tracking store: the newest
bench, one named bench, or (`--all`) the newest bench of every experiment; report.md says which
benches and experiments of the store it leaves out."""

from __future__ import annotations

import argparse

from harness.cli.common import add_tracking_uri

NAME = "report"
HELP = "write results/ from the tracking store"


def add_arguments(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group()
    which.add_argument("--bench-id", help="which bench (default: the newest in the store)")
    which.add_argument("--all", action="store_true", dest="every",
                       help="the newest bench of every experiment in the store, each section naming its bench")
    p.add_argument("--out", default="results", help="folder to write (default: results)")
    add_tracking_uri(p)


def run(args: argparse.Namespace) -> int:
    from harness import report

    report.build(args.bench_id, args.out, args.tracking_uri, every=args.every)
    return 0
