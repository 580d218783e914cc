import subprocess
import sys

from tests.test_spec import XOR

SUBCOMMANDS = ["check", "run", "parity", "bench", "report", "evaluate", "perf", "data", "ui"]


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
    assert "training.epochs = 0: must be an integer >= 1" in out.stderr
    assert "Traceback" not in out.stderr


def test_usage_mistakes_are_one_line_and_exit_2():
    for args in (["nosuchcommand"], ["check"], ["check", "a.toml", "--bogus"]):
        out = harness(*args)
        assert out.returncode == 2, args
        assert out.stderr.strip().count("\n") == 0, out.stderr
        assert "--help" in out.stderr


def test_check_summarises_a_valid_file(tmp_path):
    path = tmp_path / "xor.toml"
    path.write_text(XOR)
    out = harness("check", str(path))
    assert out.returncode == 0
    assert "2 -> 4 tanh -> 1 sigmoid" in out.stdout
