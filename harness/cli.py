"""The `harness` command: a thin layer over importable functions.

Any `HarnessError` is printed as one line and exits 2; nothing else reaches the user as
a traceback unless it is a bug in the harness itself.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from harness.errors import HarnessError

Command = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _check(args: argparse.Namespace) -> int:
    from harness import spec

    s = spec.load(args.experiment, args.set)
    net = s.network
    layers = " -> ".join([str(net.inputs), *(f"{h.units} {h.activation.name}" for h in net.hidden),
                          f"{net.outputs} {net.output_activation.name}"])
    print(f"{s.name}: {s.data.dataset}; {layers}; {s.training.loss}, {s.training.optimizer.name} "
          f"lr {s.training.optimizer.learning_rate}, {s.training.epochs} epochs of batch "
          f"{s.training.batch_size}, {s.training.dtype}")
    return 0


def _parity(args: argparse.Namespace) -> int:
    from harness import spec
    from harness.parity import TOLERANCES, lockstep
    from harness.prepare import prepare, threads_for

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
          f"{len(inputs.batches(0))} batches, {threads} thread{'s' * (threads > 1)}; tolerances: "
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


def _not_yet(name: str) -> Command:
    def run(args: argparse.Namespace) -> int:
        raise HarnessError(f"'harness {name}' is not yet available in this version")
    return run


def _add_spec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="an experiment file, such as experiments/xor.toml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting of the file (TOML value), e.g. training.epochs=3; repeatable")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description="Benchmark a from-scratch NumPy network against PyTorch, "
                                                 "tracked in MLflow.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("check", help="validate an experiment file and summarise it")
    _add_spec_args(p)
    p.set_defaults(func=_check)

    p = sub.add_parser("parity", help="train both engines in lockstep and print how far apart they are")
    _add_spec_args(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, help="epochs to compare (default: the file's)")
    p.add_argument("--threads", type=int, help="threads for both engines (default: the file's; 0 = every core)")
    p.add_argument("--every", type=int, help="print every N-th epoch (default: about 20 rows)")
    p.add_argument("--max-param-diff", type=float, help="largest |parameter difference| allowed")
    p.add_argument("--max-loss-diff", type=float, help="largest relative difference of epoch losses allowed")
    p.add_argument("--min-agreement", type=float, help="smallest share of test decisions that must agree")
    p.set_defaults(func=_parity)

    for name, text in [("run", "train one experiment on one engine"),
                       ("bench", "benchmark both engines on every experiment into MLflow"),
                       ("report", "write results/ from the tracking store"),
                       ("evaluate", "test a saved ONNX model on a dataset"),
                       ("perf", "measure throughput against the machine's matmul peak"),
                       ("data", "fetch and inspect datasets"),
                       ("ui", "start the MLflow UI on 127.0.0.1")]:
        p = sub.add_parser(name, help=text)
        p.set_defaults(func=_not_yet(name))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HarnessError as e:
        print(f"harness {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"harness {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
