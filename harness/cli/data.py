"""`harness data`: fetch MNIST into its cache, and show the datasets (and the cache's state)."""

from __future__ import annotations

import argparse

from harness.text import plural

NAME = "data"
HELP = "fetch and inspect datasets"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["fetch", "info"])
    p.add_argument("dataset", nargs="?", help="one dataset (default: fetch mnist; info on every dataset)")
    p.add_argument("--force", action="store_true", help="fetch again even if the cache is valid")


def run(args: argparse.Namespace) -> int:
    from harness.data import DATASETS, mnist
    from harness.errors import DataError, unknown_name

    if args.dataset is not None and args.dataset not in DATASETS:
        raise DataError(unknown_name("dataset", args.dataset, DATASETS))
    if args.action == "fetch":
        dataset = args.dataset or "mnist"
        if dataset != "mnist":
            print(f"{dataset}: generated on the fly, nothing to fetch")
            return 0
        mnist.fetch(force=args.force)
        return 0
    shown = [args.dataset] if args.dataset else list(DATASETS)
    width = max(map(len, shown))
    for name in shown:
        info = DATASETS[name]
        print(f"{name:{width}}  {info.features} inputs -> {plural(info.outputs, 'output')}: "
              f"{info.description}")
    if "mnist" not in shown:
        return 0
    status = mnist.info()
    print(f"mnist cache: {status['cache']} ({status['status']})")
    if mnist.cache_path().exists():
        arrays = mnist.read_cache()
        print(f"  verified: {', '.join(f'{k} {v.shape}' for k, v in arrays.items())}; "
              f"first train labels {arrays['y_train'][:5].tolist()}, first test labels {arrays['y_test'][:5].tolist()}")
    return 0
