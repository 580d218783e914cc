"""What the `harness` commands share: the argparse `Parser` whose usage mistakes are one line, the
`bounded` integer type, the experiment-file (`--set`) and `--tracking-uri` arguments, and `build`,
which puts every command's own arguments under one parser."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from types import ModuleType

from harness.spec import machine_cores


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


MAX_SEED = 2**32 - 1  # NumPy's SeedSequence takes any non-negative int; torch's manual_seed at most 2^64 - 1


def bounded(low: int, high: int, what: str = ""):
    """An argparse type: an integer in [low, high], else a one-line error that says so."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range: must be from {low} to {high}{what}")
        return value
    parse.__name__ = "integer"
    return parse


THREADS = bounded(0, machine_cores(), f" (0 = every core; this machine has {machine_cores()})")


def add_experiment_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="an experiment file, such as experiments/xor.toml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting of the file (TOML value), e.g. training.epochs=3; repeatable")


def share_percent(text: str) -> float:
    """An argparse type: a percentage in (0, 100], as a share (25 -> 0.25); else a one-line error."""
    try:
        value = float(text.removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of percent") from None
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"{value:g} is out of range: must be above 0 and at most 100 (percent)")
    return value / 100


def add_busy_threshold(p: argparse.ArgumentParser) -> None:
    from harness.run.interference import BUSY_THRESHOLD

    p.add_argument("--busy-threshold", type=share_percent, default=BUSY_THRESHOLD, metavar="PERCENT",
                   help="call a run measured on a busy machine when other processes used more than this share "
                        f"of the usable cores, in percent (default {BUSY_THRESHOLD * 100:g})")


def add_noise_threshold(p: argparse.ArgumentParser, verdict: str) -> None:
    """`--threshold`, the noise threshold of `harness.stats`; `verdict` says what clearing it decides."""
    from harness.stats import THRESHOLD

    p.add_argument("--threshold", type=share_percent, default=THRESHOLD, metavar="PERCENT",
                   help=f"noise threshold: {verdict} only when its 95%% interval clears 1 ± this, in percent "
                        f"(default {THRESHOLD * 100:g})")


def add_tracking_uri(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")


def build(commands: Sequence[ModuleType]) -> argparse.ArgumentParser:
    """The parser of every command, in the order given; each command module has its `NAME`, `HELP`,
    `add_arguments(parser)` and `run(args)`, which becomes the parsed command's `func`."""
    parser = Parser(prog="harness", description="Benchmark a from-scratch NumPy network against PyTorch, "
                                                 "tracked in MLflow.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for command in commands:
        p = sub.add_parser(command.NAME, help=command.HELP)
        command.add_arguments(p)
        p.set_defaults(func=command.run, parser=p)
    return parser
