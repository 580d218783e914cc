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

    for name, text in [("run", "train one experiment on one engine"),
                       ("parity", "train both engines in lockstep and print how far apart they are"),
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
