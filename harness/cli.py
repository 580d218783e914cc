"""The `harness` command: a thin layer over importable functions.

Any `HarnessError` is printed as one line and exits 2; nothing else reaches the user as
a traceback unless it is a bug in the harness itself.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from harness import cli_parser
from harness.errors import HarnessError
from harness.text import plural


def _check(args: argparse.Namespace) -> int:
    from harness import spec

    s = spec.load(args.experiment, args.set)
    print(f"{s.name}: {s.data.dataset}; {s.network.describe()}; {s.training.loss}, {s.training.optimizer.name} "
          f"lr {s.training.optimizer.learning_rate}, {s.training.epochs} epochs of batch "
          f"{s.training.batch_size}, {s.training.dtype}")
    return 0


def _parity(args: argparse.Namespace) -> int:
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


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from harness import spec
    from harness.run.prepare import threads_for
    from harness.run.runner import run

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
        result = run(s, args.engine, args.seed, threads=args.threads, on_epoch=on_epoch)
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


def _data(args: argparse.Namespace) -> int:
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


def _bench(args: argparse.Namespace) -> int:
    from harness.run import bench

    paths = args.experiments or bench.default_experiments()
    executor = None
    if args.executor == "ray":
        bench.load_all(paths, args.set)  # refuse bad files before starting a cluster
        from harness.run.distributed import RayExecutor

        executor = RayExecutor(args.ray_address)
    bench_id, outcomes = bench.bench(paths, args.set, args.tracking_uri, args.threads, executor=executor)
    print()
    print(comparison_table(outcomes))
    print(f"\nnext: `harness report` writes results/ from the store; `make ui` browses it (bench {bench_id})")
    return 1 if any(o.failures for o in outcomes) else 0


def comparison_table(outcomes) -> str:
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
        if "speedup" in c:
            lines.append(f"{'':16} speedup (torch / scratch, steady-state epochs) {c['speedup']:.2f}x "
                         f"({c.get('speedup_min', c['speedup']):.2f}-{c.get('speedup_max', c['speedup']):.2f} "
                         f"over seeds), agreement {c.get('agreement_mean', float('nan')):.2%}")
    return "\n".join(lines)


def _report(args: argparse.Namespace) -> int:
    from harness import report

    report.build(args.bench_id, args.out, args.tracking_uri)
    return 0


def _ui(args: argparse.Namespace) -> int:
    from harness import tracking
    from harness.tracking import ui

    try:
        ui.serve(tracking.resolve_uri(args.tracking_uri), "127.0.0.1", args.port)
    except KeyboardInterrupt:
        print("harness ui: stopped")
    return 0


def _playground(args: argparse.Namespace) -> int:
    from harness import playground
    from harness.tracking.ui import UIError, port_free

    if not port_free(args.host, args.port):
        raise UIError(f"port {args.port} on {args.host} is in use (another playground?): stop it or pick "
                      "another with --port")
    try:
        playground.serve(args.host, args.port)
    except KeyboardInterrupt:
        print("harness playground: stopped")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from harness.evaluate import evaluate

    print(evaluate(args.model, run_id=args.run, data=args.data, experiment=args.experiment, uri=args.tracking_uri))
    return 0


def _perf(args: argparse.Namespace) -> int:
    from harness import perf, tracking
    from harness.perf import report as perf_report

    networks = {row: Path(f) for row, f in (("conv", args.cnn), ("rnn", args.rnn)) if f}
    perf.check(Path(args.experiment), Path(args.xor), *networks.values())  # before the store: nothing written
    tracking.quiet()
    uri = tracking.connect(args.tracking_uri)
    metrics, settings, tags = perf.measure(Path(args.experiment), Path(args.xor), args.threads, args.repeats,
                                           networks=networks)
    run_id = tracking.log_perf(metrics, settings, uri, tags)
    stored, params, stored_tags = tracking.read_run(run_id, uri)  # the report shows what the store holds
    date = time.strftime("%Y-%m-%d", time.gmtime())
    path = perf_report.write(run_id, stored, params, stored_tags, args.out, date, args.readme)
    tracking.attach_report([run_id], [path], uri)
    print(f"\n{'target':80} {'measured':>26}  met")
    for target, value, ok in perf_report.targets(stored):
        print(f"{target[:80]:80} {value[:26]:>26}  {'-' if ok is None else 'yes' if ok else 'NO'}")
    print(f"\nwritten to {path}" + (f" and {args.readme}'s headline" if args.readme else "")
          + f"; logged as run {run_id} (MLflow experiment 'perf')")
    return 0


def _server(args: argparse.Namespace) -> int:
    from harness.tracking import server

    pg = None
    backend = args.backend_store_uri
    if backend is None:
        pg = server.Postgres(Path(args.postgres_dir).resolve(), args.postgres_port)
        print(f"PostgreSQL in {pg.folder} on 127.0.0.1:{pg.port} ...")
        backend = pg.start().uri
    try:
        print(f"mlflow server on http://{args.host}:{args.port} (backend {backend}, artifacts {args.artifacts}) ...")
        proc = server.mlflow_server(backend, Path(args.artifacts), args.host, args.port,
                                    log=Path(args.artifacts).parent / "mlflow-server.log")
        print(f"ready: point clients at it with --tracking-uri http://{args.host}:{args.port} "
              "(or MLFLOW_TRACKING_URI); Ctrl-C stops it")
        try:
            proc.wait()
        finally:
            server.stop(proc)
    finally:
        if pg is not None:
            pg.stop()
    return 0


def _interrupt(signum, frame) -> None:
    """The first SIGTERM or SIGINT stops the work as Ctrl-C does; later ones are ignored, so that a
    storm of signals cannot break the clean-up that marks the runs KILLED."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


COMMANDS = {"check": _check, "parity": _parity, "run": _run, "data": _data, "bench": _bench, "report": _report,
            "ui": _ui, "playground": _playground, "evaluate": _evaluate, "server": _server, "perf": _perf}


def build_parser() -> argparse.ArgumentParser:
    return cli_parser.build(COMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    args, extra = build_parser().parse_known_args(argv)
    if extra:  # named by the subcommand's parser, so that the hint points at its own --help
        args.parser.error(f"unrecognized arguments: {' '.join(extra)}")
    # no usage telemetry: MLflow's would write an installation id into ~/.config/mlflow, onnxruntime's a
    # device id into ~/.cache/Microsoft and a session file into the temporary folder, at import, in this
    # process and in every run's (which inherit these); each also sends usage events out
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import signal

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # a terminated bench closes its runs as KILLED, like Ctrl-C
        signal.signal(signal.SIGINT, _interrupt)
    try:
        return args.func(args)
    except HarnessError as e:
        print(f"harness {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"harness {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`harness ... | head`): nothing left to say
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps Python's exit flush quiet
        return 0


if __name__ == "__main__":
    sys.exit(main())
