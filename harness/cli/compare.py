"""`harness compare A B`: two benches or two perf runs side by side; exit 1 on a significant regression."""

from __future__ import annotations

import argparse

from harness.cli.common import add_noise_threshold, add_tracking_uri

NAME = "compare"
HELP = "two benches or two perf runs side by side: B against A, with intervals"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("B against A, per experiment and engine (two benches) or per figure (two perf runs), each "
                     "ratio with its 95% interval and + (B faster), - (B slower) or ~ (no significant "
                     "difference). Exit 1 when B is significantly slower anywhere, so that CI can use it.")
    for side in ("A", "B"):
        p.add_argument(side.lower(), metavar=side, help="a bench id, a perf run id, or git:REV (the newest run at "
                                                        "that commit: a branch, tag or hash)")
    p.add_argument("--kind", choices=["bench", "perf"],
                   help="what git:REV names when neither side is an id (default: bench)")
    add_noise_threshold(p, "a ratio is a difference")
    add_tracking_uri(p)


def run(args: argparse.Namespace) -> int:
    from harness import tracking
    from harness.history.compare import compare

    tracking.quiet()
    outcome = compare(args.a, args.b, args.kind, args.threshold, args.tracking_uri)
    print("\n".join(outcome.lines))
    return 1 if outcome.regressions else 0
