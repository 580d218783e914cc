"""`harness evaluate`: test a saved ONNX model (a file or a run's) on a dataset's test split."""

from __future__ import annotations

import argparse

from harness.cli.common import add_tracking_uri

NAME = "evaluate"
HELP = "test a saved ONNX model on a dataset's test split"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="an .onnx file saved by either engine (or by torch.onnx.export)")
    p.add_argument("--run", help="instead of a file: the model logged by this MLflow run id")
    p.add_argument("--data", help="dataset to test on (default: the one saved in the model)")
    p.add_argument("--experiment", help="an experiment file giving the dataset and metric")
    add_tracking_uri(p)


def run(args: argparse.Namespace) -> int:
    from harness.run.evaluate import evaluate

    print(evaluate(args.model, run_id=args.run, data=args.data, experiment=args.experiment, uri=args.tracking_uri))
    return 0
