"""`harness compare A B` on small synthetic stores: two benches of one commit are `~` and exit 0, a bench
made slower is `-` with an interval below 1 and exits 1, perf runs figure by figure, git:REV, and every
refusal one line."""

import re
import subprocess

import numpy as np
import pytest

from harness import stats
from harness.cli import main
from tests.history import store
from tests.history.store import OTHER_CPU, fresh_store, template_store  # noqa: F401  (fixtures: uri)

COMMIT, LATER = "1" * 40, "2" * 40


def compare(capsys, *args):
    code = main(["compare", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def rows(out):
    """The table's rows as lists of cells."""
    return [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()
            if line.startswith("| ") and not line.startswith("| experiment") and not line.startswith("| figure")]


def test_two_benches_of_one_commit_compare_as_no_difference_and_exit_0(uri, capsys):
    rng = np.random.default_rng(1)
    a, b = store.bench(uri, COMMIT, rng), store.bench(uri, COMMIT, rng)  # timings drawn from one distribution
    code, out, _ = compare(capsys, a, b, "--tracking-uri", uri)
    assert code == 0
    table = rows(out)
    assert [(r[0], r[1], r[6]) for r in table] == [("xor", "scratch", "~"), ("xor", "torch", "~")]
    for r in table:
        low, high = map(float, re.search(r"\[([\d.]+)–([\d.]+)\]", r[5]).groups())
        assert low <= 1 <= high and r[5].startswith("~")
        assert r[7] == "accuracy 0.9800 → 0.9800"  # each side's test accuracy beside its speed
    assert out.splitlines()[-1] == "0 significant regressions, 0 improvements, 2 ~ (threshold ±2%)"


def test_a_bench_made_slower_shows_minus_with_an_interval_below_1_and_exits_1(uri, capsys):
    rng = np.random.default_rng(2)
    a, b = store.bench(uri, COMMIT, rng), store.bench(uri, LATER, rng, scale=1.3)
    code, out, _ = compare(capsys, a, b, "--tracking-uri", uri)
    assert code == 1
    for r in rows(out):
        assert r[6] == "-"
        ratio, low, high = map(float, re.fullmatch(r"([\d.]+)x \[([\d.]+)–([\d.]+)\] \(.*\)", r[5]).groups())
        assert high < 1 - stats.THRESHOLD and low < 1 / 1.3 < high  # A's epoch time over B's: about 1/1.3
    assert out.splitlines()[-1].startswith("2 significant regressions, 0 improvements")
    code, out, _ = compare(capsys, b, a, "--tracking-uri", uri)  # the other way round: B is faster
    assert code == 0 and [r[6] for r in rows(out)] == ["+", "+"]
    code, out, _ = compare(capsys, a, b, "--tracking-uri", uri, "--threshold", "50")  # a 30% step inside ±50%
    assert code == 0 and [r[6] for r in rows(out)] == ["~", "~"]


def test_runs_measured_on_a_busy_machine_are_left_out_and_said_so(uri, capsys):
    rng = np.random.default_rng(3)
    a = store.bench(uri, COMMIT, rng, engines=("scratch",))
    b = store.bench(uri, COMMIT, rng, engines=("scratch",), busy={("scratch", 1)})
    code, out, _ = compare(capsys, a, b, "--tracking-uri", uri)
    assert rows(out)[0][2] == "3 / 2"
    assert "left out: 1 run measured on a busy machine (A 0, B 1" in out
    every = store.bench(uri, COMMIT, rng, engines=("scratch",), busy={("scratch", s) for s in (0, 1, 2)})
    assert main(["compare", a, every, "--tracking-uri", uri]) == 2  # nothing left to compare
    assert capsys.readouterr().err == (f"harness compare: error: nothing to compare between {a} and {every}: xor "
                                       "scratch: not compared, every run of B measured on a busy machine\n")


def test_two_perf_runs_figure_by_figure_their_busy_figures_aside(uri, capsys):
    rng = np.random.default_rng(4)
    a, b = store.perf(uri, COMMIT, rng), store.perf(uri, LATER, rng, scale=0.7)  # scratch's rate 30% lower
    code, out, _ = compare(capsys, a, b, "--tracking-uri", uri)
    assert code == 1
    verdicts = {r[0]: r[4] for r in rows(out)}
    assert verdicts == {"train_sps.scratch.b64": "-", "train_sps.torch.b64.t1": "~"}  # no busy.others_share
    assert "1 significant regression, 0 improvements, 1 ~" in out


def test_git_rev_picks_the_newest_run_at_that_commit(uri, capsys, tmp_path, monkeypatch):
    from harness.history import git

    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for message in ("first", "second"):
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                        "--allow-empty", "-m", message], check=True)
    head, parent = (git.rev_parse(r, repo) for r in ("HEAD", "HEAD~1"))
    monkeypatch.setattr(git, "PROJECT", repo)
    rng = np.random.default_rng(5)
    store.bench(uri, parent, rng, engines=("scratch",))
    older = store.bench(uri, parent, rng, engines=("scratch",))  # the newest at HEAD~1
    newest = store.bench(uri, head, rng, engines=("scratch",))
    perf = store.perf(uri, head, rng)
    code, out, _ = compare(capsys, "git:HEAD~1", "git:HEAD", "--tracking-uri", uri)
    assert code == 0, out
    assert out.splitlines()[:2] == [f"A: bench {older} (git:HEAD~1) at commit {parent[:12]}",
                                    f"B: bench {newest} (git:HEAD) at commit {head[:12]}"]
    code, out, _ = compare(capsys, f"git:{parent[:7]}", newest, "--tracking-uri", uri)  # an abbreviated hash
    assert out.startswith(f"A: bench {older} (git:{parent[:7]})")
    code, out, _ = compare(capsys, f"git:{parent}", perf, "--tracking-uri", uri)  # the kind from the other side
    assert code == 2 and "no perf run at commit" in _
    code, out, _ = compare(capsys, "git:HEAD", "git:HEAD", "--kind", "perf", "--tracking-uri", uri)
    assert code == 0 and out.startswith(f"A: perf run {perf} (git:HEAD)")
    monkeypatch.setattr(git, "PROJECT", tmp_path / "no-repo")  # no repository: a hash is matched in the store
    code, out, _ = compare(capsys, f"git:{head[:8]}", f"git:{parent[:8]}", "--tracking-uri", uri)
    assert out.splitlines()[0] == f"A: bench {newest} (git:{head[:8]}) at commit {head[:12]}"


@pytest.mark.parametrize("case,message", [
    ("unknown", "unknown bench or perf run 'nosuchbench' in sqlite:"),
    ("kinds", "is a bench and "),
    ("machines", "A and B were measured on different machines (machine.cpu "),
    ("revision", "git:no-such-branch: no such revision in "),
    ("no run", "no bench run at commit abcdef12"),
    ("kind flag", "--kind perf, but "),
])
def test_every_refusal_is_one_line(uri, capsys, case, message):
    rng = np.random.default_rng(6)
    a = store.bench(uri, COMMIT, rng, engines=("scratch",))
    other = {
        "unknown": ["nosuchbench"],
        "kinds": [store.perf(uri, COMMIT, rng)],
        "machines": [store.bench(uri, COMMIT, rng, engines=("scratch",), tags=OTHER_CPU)],
        "revision": ["git:no-such-branch"],
        "no run": ["git:abcdef12"],
        "kind flag": ["git:HEAD", "--kind", "perf"],
    }[case]
    code, out, err = compare(capsys, a, *other, "--tracking-uri", uri)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("harness compare: error: ") and message in err, err
    if case == "machines":
        assert "'Another CPU @ 9 GHz'" in err and "never compared across machines" in err
