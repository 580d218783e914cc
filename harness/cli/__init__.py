"""The `harness` command: a thin layer over importable functions, one module per command (its
name, help, arguments, run function and printing), their shared flags in `harness.cli.common`.

Any `HarnessError` is printed as one line and exits 2; nothing else reaches the user as
a traceback unless it is a bug in the harness itself.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Sequence

from harness.cli import (
    bench,
    check,
    common,
    compare,
    data,
    evaluate,
    history,
    parity,
    perf,
    playground,
    report,
    run,
    server,
    ui,
)
from harness.errors import HarnessError


def _interrupt(signum, frame) -> None:
    """The first SIGTERM or SIGINT stops the work as Ctrl-C does; later ones are ignored, so that a
    storm of signals cannot break the clean-up that marks the runs KILLED."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


# in the order `harness --help` lists them
COMMANDS = (check, parity, run, data, bench, report, compare, history, ui, playground, evaluate, server, perf)


def build_parser() -> argparse.ArgumentParser:
    return common.build(COMMANDS)


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
