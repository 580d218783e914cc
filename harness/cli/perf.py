"""`harness perf`: measure the engines and their peers, log the figures, write results/perf.md and print
the targets."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from harness.cli.common import THREADS, add_busy_threshold, add_tracking_uri, bounded

NAME = "perf"
HELP = "measure both engines against each other and the machine's matmul peak"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--experiment", default="experiments/mnist.toml", help="the network to measure")
    p.add_argument("--xor", default="experiments/xor.toml", help="the tiny network for per-step overhead")
    p.add_argument("--cnn", default="experiments/mnist_cnn.toml",
                   help="the network of the convolutional row ('' to leave the row out)")
    p.add_argument("--rnn", default="experiments/mnist_rnn.toml",
                   help="the network of the recurrent row ('' to leave the row out)")
    p.add_argument("--resnet", default="experiments/mnist_resnet.toml",
                   help="the network of the residual row ('' to leave the row out)")
    p.add_argument("--vit", default="experiments/mnist_vit.toml",
                   help="the network of the transformer row ('' to leave the row out)")
    p.add_argument("--threads", type=THREADS, help="threads for every engine (default: the file's)")
    p.add_argument("--repeats", type=bounded(1, 100), default=5,
                   help="repeats, each a fresh process per runtime (median, min-max)")
    p.add_argument("--out", default="results", help="folder for perf.md")
    p.add_argument("--readme", help="also rewrite this README's block between its perf-headline markers "
                                    "(refused when measured on a busy machine)")
    p.add_argument("--force", action="store_true",
                   help="rewrite the README's headline even from a run measured on a busy machine")
    add_busy_threshold(p)
    add_tracking_uri(p)


def run(args: argparse.Namespace) -> int:
    from harness import perf, tracking
    from harness.perf import report as perf_report
    from harness.perf.runtime import NETWORK_ROWS

    files = (args.cnn, args.rnn, args.resnet, args.vit)
    networks = {row: Path(f) for row, f in zip(NETWORK_ROWS, files, strict=True) if f}
    perf.check(Path(args.experiment), Path(args.xor), *networks.values())  # before the store: nothing written
    tracking.quiet()
    uri = tracking.connect(args.tracking_uri)
    metrics, settings, tags = perf.measure(Path(args.experiment), Path(args.xor), args.threads, args.repeats,
                                           networks=networks, busy_threshold=args.busy_threshold)
    run_id = tracking.log_perf(metrics, settings, uri, tags)
    stored, params, stored_tags = tracking.read_run(run_id, uri)  # the report shows what the store holds
    date = time.strftime("%Y-%m-%d", time.gmtime())
    readme = args.readme
    refused = bool(readme) and perf_report.busy_machine(stored_tags) and not args.force
    if refused:
        readme = None
    path = perf_report.write(run_id, stored, params, stored_tags, args.out, date, readme)
    tracking.attach_report([run_id], [path], uri)
    print(f"\n{'target':80} {'measured: ratio [95% interval] (min-max)':>40}  met")
    for target, value, ok in perf_report.targets(stored):
        print(f"{target[:80]:80} {value:>40}  {'-' if ok is None else '~' if ok == '~' else 'yes' if ok else 'NO'}")
    print(f"\nwritten to {path}" + (f" and {readme}'s headline" if readme else "")
          + f"; logged as run {run_id} (MLflow experiment 'perf')")
    if refused:
        print(f"{args.readme} not rewritten: run {run_id[:8]} was measured on a busy machine (other processes used "
              f"{stored.get('busy.others_share.max', float('nan')):.0%} of the cores in its busiest repeat, above "
              f"{args.busy_threshold:.0%}); measure again on a quiet machine, or give --force")
        return 1
    return 0
