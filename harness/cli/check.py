"""`harness check`: validate an experiment file and print what it describes in one line."""

from __future__ import annotations

import argparse

from harness.cli.common import add_experiment_args

NAME = "check"
HELP = "validate an experiment file and summarise it"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_experiment_args(p)


def run(args: argparse.Namespace) -> int:
    from harness import spec

    s = spec.load(args.experiment, args.set)
    print(f"{s.name}: {s.data.dataset}; {s.network.describe()}; {s.training.loss}, {s.training.optimizer.name} "
          f"lr {s.training.optimizer.learning_rate}, {s.training.epochs} epochs of batch "
          f"{s.training.batch_size}, {s.training.dtype}")
    return 0
