"""`harness run`: train one experiment on one engine, with a progress bar, and print its summary."""

from __future__ import annotations

import argparse

from harness.cli.common import MAX_SEED, THREADS, add_experiment_args, bounded
from harness.text import plural

NAME = "run"
HELP = "train one experiment on one engine"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_experiment_args(p)
    p.add_argument("--engine", default="scratch", choices=["scratch", "torch"])
    p.add_argument("--seed", type=bounded(0, MAX_SEED), default=0)
    p.add_argument("--threads", type=THREADS, help="threads (default: the file's; 0 = every core)")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from harness import spec
    from harness.run.prepare import threads_for
    from harness.run.runner import run as train

    s = spec.load(args.experiment, args.set)
    metric = s.evaluation.metric
    bar = tqdm(total=s.training.epochs, desc=f"{s.name}/{args.engine}", unit="epoch", disable=None,
               dynamic_ncols=True, leave=False)

    def on_epoch(r):
        shown = {"loss": f"{r.train_loss:.4g}"}
        if r.test_metric is not None:
            shown[metric] = f"{r.test_metric:.4f}"
        bar.set_postfix(shown, refresh=False)
        bar.update(1)

    try:
        result = train(s, args.engine, args.seed, threads=args.threads, on_epoch=on_epoch)
    finally:
        bar.close()
    print(summary(result, s, threads_for(s, args.threads)))
    return 0


def summary(r, s, threads: int) -> str:
    """A few lines a person reads after a run."""
    metric = r.metric
    lines = [f"{r.experiment} on {r.engine} (seed {r.seed}, {s.training.dtype}, {plural(threads, 'thread')}"
             f"): test {metric} {r.final[f'test_{metric}']:.4f}, test loss "
             f"{r.final['test_loss']:.4g}" + "".join(f", {k} {v:.4g}" for k, v in r.final.items()
                                                  if k not in (f"test_{metric}", "test_loss"))]
    if s.evaluation.target is not None:
        lines.append(f"  target {metric} {s.evaluation.target}: " + (
            f"reached at epoch {r.target_epoch}, after {r.time_to_target_s:.3f} s" if r.target_epoch
            else "not reached"))
    lines.append(f"  train loss {r.epochs[0].train_loss:.4g} -> {r.epochs[-1].train_loss:.4g} over {len(r.epochs)} "
                 f"epochs; training {r.train_time_s:.3f} s (median epoch {r.median_epoch_s * 1e3:.3g} ms, "
                 f"{r.samples_per_s:,.0f} samples/s); evaluation {r.eval_time_s:.3f} s")
    return "\n".join(lines)
