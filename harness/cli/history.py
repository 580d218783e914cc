"""`harness history`: every bench and perf figure in the store, commit by commit, with its steps flagged."""

from __future__ import annotations

import argparse

from harness.cli.common import add_noise_threshold, add_tracking_uri

NAME = "history"
HELP = "every figure in the store across commits, its steps flagged: tables and plots"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Every bench figure (an experiment's steady-state epoch time on each engine) and every perf "
                     "figure in the store, commit by commit: the median with its 95% interval, a table and a PNG "
                     "per figure and machine (machines are never mixed), and the steps flagged at the commit "
                     "where they begin. Runs measured on a busy machine are left out.")
    p.add_argument("--experiment", help="only this bench experiment (and its sweep variants)")
    p.add_argument("--figure", metavar="NAME",
                   help="only this figure, or those a shell pattern matches (train_sps.*, xor.*.steady_epoch_s)")
    p.add_argument("--out", default="results/history", help="folder for the plots and history.md "
                                                            "(default: results/history)")
    add_noise_threshold(p, "a step is flagged")
    add_tracking_uri(p)


def run(args: argparse.Namespace) -> int:
    from harness import tracking
    from harness.history.timeline import history

    tracking.quiet()
    history(args.tracking_uri, args.experiment, args.figure, args.out, args.threshold)
    return 0
