"""`harness parity`: train both engines in lockstep and print, epoch by epoch, how far apart they are."""

from __future__ import annotations

import argparse

from harness.cli.common import MAX_SEED, THREADS, add_experiment_args, bounded
from harness.text import plural

NAME = "parity"
HELP = "train both engines in lockstep and print how far apart they are"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_experiment_args(p)
    p.add_argument("--seed", type=bounded(0, MAX_SEED), default=0)
    p.add_argument("--epochs", type=bounded(1, 1_000_000), help="epochs to compare (default: the file's)")
    p.add_argument("--threads", type=THREADS, help="threads for both engines (default: the file's; 0 = every core)")
    p.add_argument("--every", type=bounded(1, 1_000_000), help="print every N-th epoch (default: about 20 rows)")
    p.add_argument("--max-param-diff", type=float, help="largest |parameter difference| allowed")
    p.add_argument("--max-loss-diff", type=float, help="largest relative difference of epoch losses allowed")
    p.add_argument("--min-agreement", type=float, help="smallest share of test decisions that must agree")


def run(args: argparse.Namespace) -> int:
    from harness import spec
    from harness.run.parity import TOLERANCES, lockstep
    from harness.run.prepare import prepare, threads_for

    s = spec.load(args.experiment, args.set)
    param_tol, loss_tol, agree_tol = TOLERANCES[s.training.dtype]
    param_tol = args.max_param_diff if args.max_param_diff is not None else param_tol
    loss_tol = args.max_loss_diff if args.max_loss_diff is not None else loss_tol
    agree_tol = args.min_agreement if args.min_agreement is not None else agree_tol
    epochs = args.epochs or s.training.epochs
    every = args.every or max(1, epochs // 20)
    threads = threads_for(s, args.threads)
    inputs = prepare(s, args.seed)
    print(f"parity of {s.name}: seed {args.seed}, {s.training.dtype}, {epochs} epochs of "
          f"{len(inputs.batches(0))} batches, {plural(threads, 'thread')}; tolerances: "
          f"|dparam| <= {param_tol:g}, loss rel. diff <= {loss_tol:g}, agreement >= {agree_tol:.2%}")
    print(f"{'epoch':>6} {'loss scratch':>14} {'loss torch':>14} {'rel diff':>9} {'max |dparam|':>12} "
          f"{'agreement':>9}  worst parameter")
    failures = []
    for d in lockstep(inputs, epochs, threads):
        bad = [what for what, over in (("max |dparam|", d.max_param_diff > param_tol),
                                       ("loss rel. diff", d.loss_rel_diff > loss_tol),
                                       ("agreement", d.agreement < agree_tol)) if over]
        if bad and not failures:
            failures = [f"epoch {d.epoch}: {', '.join(bad)}"]
        if d.epoch % every == 0 or d.epoch in (1, epochs) or bad:
            print(f"{d.epoch:>6} {d.loss_scratch:>14.8g} {d.loss_torch:>14.8g} {d.loss_rel_diff:>9.2e} "
                  f"{d.max_param_diff:>12.2e} {d.agreement:>9.2%}  {d.worst_param}{'  <- over' if bad else ''}")
    if failures:
        print(f"FAIL: tolerance exceeded first at {failures[0]}")
        return 1
    print("OK: the engines stayed within tolerance at every epoch")
    return 0
