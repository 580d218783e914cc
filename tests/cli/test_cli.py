import subprocess
import sys
from pathlib import Path

from tests.spec.test_spec import XOR

ROOT = Path(__file__).resolve().parents[2]
XOR_FILE = str(ROOT / "experiments" / "xor.toml")
SUBCOMMANDS = ["check", "run", "parity", "bench", "report", "evaluate", "perf", "data", "ui", "playground"]


def harness(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_help_lists_every_subcommand():
    out = harness("--help")
    assert out.returncode == 0
    for name in SUBCOMMANDS:
        assert name in out.stdout


def test_a_bad_experiment_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "xor.toml"
    path.write_text(XOR)
    out = harness("check", str(path), "--set", "training.epochs=0")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "training.epochs = 0: must be an integer from 1 to" in out.stderr
    assert "Traceback" not in out.stderr


def test_usage_mistakes_are_one_line_and_exit_2():
    for args in (["nosuchcommand"], ["check"], ["check", "a.toml", "--bogus"]):
        out = harness(*args)
        assert out.returncode == 2, args
        assert out.stderr.strip().count("\n") == 0, out.stderr
        assert "--help" in out.stderr


def test_data_info_names_every_dataset_or_the_one_asked_for():
    from harness.data import DATASETS

    out = harness("data", "info")
    assert out.returncode == 0
    rows = [line for line in out.stdout.splitlines() if " inputs -> " in line]
    assert [row.split()[0] for row in rows] == list(DATASETS)  # every one, binary_addition and the 2-D sets too
    assert len({row.index(" inputs -> ") - len(row.split()[1]) for row in rows}) == 1  # one column for the counts
    out = harness("data", "info", "spiral")
    assert out.returncode == 0 and out.stdout.splitlines() == [
        f"spiral  2 inputs -> 1 output: {DATASETS['spiral'].description}"]
    out = harness("data", "fetch", "circle")
    assert out.returncode == 0 and out.stdout == "circle: generated on the fly, nothing to fetch\n"
    out = harness("data", "info", "sprial")
    assert out.returncode == 2 and out.stderr.startswith("harness data: error: unknown dataset 'sprial' (did you mean")
    assert out.stderr.count("\n") == 1


def test_check_summarises_a_valid_file(tmp_path):
    path = tmp_path / "xor.toml"
    path.write_text(XOR)
    out = harness("check", str(path))
    assert out.returncode == 0
    assert "2 -> 4 tanh -> 1 sigmoid" in out.stdout


def test_parity_prints_the_divergence_table_and_passes_on_xor():
    out = harness("parity", XOR_FILE, "--epochs", "40", "--every", "10")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[1].split()[:3] == ["epoch", "loss", "scratch"]
    rows = [line.split() for line in lines[2:-1]]
    assert [int(r[0]) for r in rows] == [1, 10, 20, 30, 40]
    assert all(float(r[4]) <= 1e-6 for r in rows)  # max |dparam| in float64
    assert lines[-1].startswith("OK")


def test_parity_exits_1_when_a_tolerance_is_exceeded():
    out = harness("parity", XOR_FILE, "--epochs", "3", "--min-agreement", "1.01")
    assert out.returncode == 1
    assert "FAIL: tolerance exceeded first at epoch 1: agreement" in out.stdout
