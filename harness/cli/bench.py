"""`harness bench`: every experiment on both engines into the tracking store, and their comparison table."""

from __future__ import annotations

import argparse

from harness.cli.common import THREADS, add_busy_threshold, add_tracking_uri

NAME = "bench"
HELP = "benchmark both engines on every experiment into MLflow"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiments", nargs="*", help="experiment files (default: every file in experiments/)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override in every file")
    p.add_argument("--threads", type=THREADS, help="threads for both engines (default: each file's)")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: one run after another here (default); ray: each run a Ray task on a whole node")
    p.add_argument("--ray-address", help="a Ray cluster to join (default: start a local one)")
    add_busy_threshold(p)
    add_tracking_uri(p)


def run(args: argparse.Namespace) -> int:
    from harness.run import bench

    paths = args.experiments or bench.default_experiments()
    executor = None
    if args.executor == "ray":
        bench.load_all(paths, args.set)  # refuse bad files before starting a cluster
        from harness.run.distributed import RayExecutor

        executor = RayExecutor(args.ray_address)
    bench_id, outcomes = bench.bench(paths, args.set, args.tracking_uri, args.threads, executor=executor,
                                     busy_threshold=args.busy_threshold)
    print()
    print(comparison_table(outcomes))
    print(f"\nnext: `harness report` writes results/ from the store; `make ui` browses it (bench {bench_id})")
    return 1 if any(o.failures for o in outcomes) else 0


def speedup_line(c: dict[str, float]) -> str:
    """The bench's speedup as the console prints it: ratio, 95% interval, the seeds' range, verdict."""
    from harness import stats
    from harness.run.bench import speedup_comparison

    s = speedup_comparison(c)
    if s is None:
        return ""
    return (f"speedup (torch / scratch, steady-state epochs) {stats.cell(s)}: ratio [95% interval] (lowest-highest "
            f"seed), {stats.words(s, 'scratch faster', 'scratch slower')}")


def comparison_table(outcomes) -> str:
    from harness.run.bench import speedup_comparison

    lines = [f"{'experiment':16} {'engine':8} {'test metric':>18} {'training s':>16} {'samples/s':>12} "
             f"{'peak RSS MB':>11}"]
    for o in outcomes:
        metric = f"test_{o.spec.evaluation.metric}"
        c = o.comparison
        if o.variant:
            lines.append(f"{o.spec.name} [{o.variant}]")
        for engine in o.spec.bench.engines:
            if f"{engine}/{metric}_mean" not in c:
                lines.append(f"{o.spec.name:16} {engine:8} {'all runs failed':>18}")
                continue
            rss = c.get(f"{engine}/rss_peak_mb_mean", float("nan"))
            lines.append(f"{o.spec.name:16} {engine:8} {c[f'{engine}/{metric}_mean']:>9.4f} ± "
                         f"{c[f'{engine}/{metric}_std']:<6.4f} {c[f'{engine}/train_time_s_mean']:>7.3f} ± "
                         f"{c[f'{engine}/train_time_s_std']:<6.3f} {c[f'{engine}/samples_per_s_mean']:>12,.0f} "
                         f"{rss:>11.0f}")
        speed = speedup_line(c)
        if speed:
            lines.append(f"{'':16} {speed}, agreement {c.get('agreement_mean', float('nan')):.2%}"
                         + (f"; {len(o.busy)} run(s) on a busy machine left out" if o.busy else ""))
            warning = speedup_comparison(c).warning("seeds")
            if warning:
                lines.append(f"{'':16} warning: the speedup's {warning}")
        elif o.busy:
            lines.append(f"{'':16} no speedup: every seed had a run measured on a busy machine")
    return "\n".join(lines)
