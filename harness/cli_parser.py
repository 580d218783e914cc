"""The `harness` command line: every command's arguments, checked by argparse before anything runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping

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


def _add_spec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="an experiment file, such as experiments/xor.toml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting of the file (TOML value), e.g. training.epochs=3; repeatable")


def _add_uri_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")


def build(commands: Mapping[str, Callable[[argparse.Namespace], int]]) -> argparse.ArgumentParser:
    """The parser of every command; each parsed command's `func` is `commands[name]`."""
    parser = Parser(prog="harness", description="Benchmark a from-scratch NumPy network against PyTorch, "
                                                 "tracked in MLflow.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    _add = sub.add_parser

    def add_parser(name: str, **kwargs) -> argparse.ArgumentParser:
        p = _add(name, **kwargs)
        p.set_defaults(parser=p)
        return p

    sub.add_parser = add_parser  # type: ignore[method-assign]

    p = sub.add_parser("check", help="validate an experiment file and summarise it")
    _add_spec_args(p)
    p.set_defaults(func=commands["check"])

    p = sub.add_parser("parity", help="train both engines in lockstep and print how far apart they are")
    _add_spec_args(p)
    p.add_argument("--seed", type=bounded(0, MAX_SEED), default=0)
    p.add_argument("--epochs", type=bounded(1, 1_000_000), help="epochs to compare (default: the file's)")
    p.add_argument("--threads", type=THREADS, help="threads for both engines (default: the file's; 0 = every core)")
    p.add_argument("--every", type=bounded(1, 1_000_000), help="print every N-th epoch (default: about 20 rows)")
    p.add_argument("--max-param-diff", type=float, help="largest |parameter difference| allowed")
    p.add_argument("--max-loss-diff", type=float, help="largest relative difference of epoch losses allowed")
    p.add_argument("--min-agreement", type=float, help="smallest share of test decisions that must agree")
    p.set_defaults(func=commands["parity"])

    p = sub.add_parser("run", help="train one experiment on one engine")
    _add_spec_args(p)
    p.add_argument("--engine", default="scratch", choices=["scratch", "torch"])
    p.add_argument("--seed", type=bounded(0, MAX_SEED), default=0)
    p.add_argument("--threads", type=THREADS, help="threads (default: the file's; 0 = every core)")
    p.set_defaults(func=commands["run"])

    p = sub.add_parser("data", help="fetch and inspect datasets")
    p.add_argument("action", choices=["fetch", "info"])
    p.add_argument("dataset", nargs="?", help="one dataset (default: fetch mnist; info on every dataset)")
    p.add_argument("--force", action="store_true", help="fetch again even if the cache is valid")
    p.set_defaults(func=commands["data"])

    p = sub.add_parser("bench", help="benchmark both engines on every experiment into MLflow")
    p.add_argument("experiments", nargs="*", help="experiment files (default: every file in experiments/)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override in every file")
    p.add_argument("--threads", type=THREADS, help="threads for both engines (default: each file's)")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: one run after another here (default); ray: each run a Ray task on a whole node")
    p.add_argument("--ray-address", help="a Ray cluster to join (default: start a local one)")
    _add_uri_arg(p)
    p.set_defaults(func=commands["bench"])

    p = sub.add_parser("report", help="write results/ from the tracking store")
    p.add_argument("--bench-id", help="which bench (default: the newest in the store)")
    p.add_argument("--out", default="results", help="folder to write (default: results)")
    _add_uri_arg(p)
    p.set_defaults(func=commands["report"])

    p = sub.add_parser("ui", help="start the MLflow UI on 127.0.0.1 for the tracking store")
    p.add_argument("--port", type=bounded(1, 65535), default=5000,
                   help="port on 127.0.0.1 to serve the UI on (default: 5000)")
    _add_uri_arg(p)
    p.set_defaults(func=commands["ui"])

    p = sub.add_parser("playground", help="an interactive page where both engines learn a 2-D problem side by side")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=bounded(1, 65535), default=8765, help="port to serve the page on (default: 8765)")
    p.set_defaults(func=commands["playground"])

    p = sub.add_parser("evaluate", help="test a saved ONNX model on a dataset's test split")
    p.add_argument("model", nargs="?", help="an .onnx file saved by either engine (or by torch.onnx.export)")
    p.add_argument("--run", help="instead of a file: the model logged by this MLflow run id")
    p.add_argument("--data", help="dataset to test on (default: the one saved in the model)")
    p.add_argument("--experiment", help="an experiment file giving the dataset and metric")
    _add_uri_arg(p)
    p.set_defaults(func=commands["evaluate"])

    p = sub.add_parser("server", help="start a shared MLflow server on PostgreSQL (loopback by default)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0 for a team's network)")
    p.add_argument("--port", type=bounded(1, 65535), default=5000)
    p.add_argument("--backend-store-uri", help="an existing database, e.g. postgresql+psycopg://user:pw@db/mlflow "
                                               "(default: start PostgreSQL in --postgres-dir)")
    p.add_argument("--postgres-dir", default=".harness/postgres", help="where the local PostgreSQL keeps its data")
    p.add_argument("--postgres-port", type=bounded(1, 65535), default=5433)
    p.add_argument("--artifacts", default=".harness/artifacts", help="where the server stores artifacts")
    p.set_defaults(func=commands["server"])

    p = sub.add_parser("perf", help="measure both engines against each other and the machine's matmul peak")
    p.add_argument("--experiment", default="experiments/mnist.toml", help="the network to measure")
    p.add_argument("--xor", default="experiments/xor.toml", help="the tiny network for per-step overhead")
    p.add_argument("--cnn", default="experiments/mnist_cnn.toml",
                   help="the network of the convolutional row ('' to leave the row out)")
    p.add_argument("--rnn", default="experiments/mnist_rnn.toml",
                   help="the network of the recurrent row ('' to leave the row out)")
    p.add_argument("--threads", type=THREADS, help="threads for every engine (default: the file's)")
    p.add_argument("--repeats", type=bounded(1, 100), default=5,
                   help="repeats, each a fresh process per runtime (median, min-max)")
    p.add_argument("--out", default="results", help="folder for perf.md")
    p.add_argument("--readme", help="also rewrite this README's block between its perf-headline markers")
    _add_uri_arg(p)
    p.set_defaults(func=commands["perf"])
    return parser
