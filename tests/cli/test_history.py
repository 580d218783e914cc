"""`harness history` on small synthetic stores: a step injected at the middle of three commits is flagged
there and drawn, a store without one flags nothing, machines are never mixed, commits follow git."""

import subprocess

import numpy as np

from harness.cli import main
from harness.history import git
from tests.history import store
from tests.history.store import OTHER_CPU, fresh_store, template_store  # noqa: F401  (fixtures: uri)

C1, C2, C3 = "a1" * 20, "b2" * 20, "c3" * 20
PNG = b"\x89PNG\r\n\x1a\n"


def history(capsys, uri, out, *args):
    code = main(["history", "--tracking-uri", uri, "--out", str(out), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def tables(out):
    """{figure heading: [(commit, step cell)]} of every table printed, in order, per machine section."""
    found, current = {}, None
    for line in out.splitlines():
        if line.startswith("## Machine"):
            machine = line.split(":")[0].removeprefix("## ")
        elif line.startswith("### "):
            current = f"{machine} {line.removeprefix('### ').split(' ')[0].rstrip(',')}"
            found[current] = []
        elif line.startswith("| ") and not line.startswith("| commit") and current:
            cells = [c.strip() for c in line.strip("|").split("|")]
            found[current].append((cells[0], cells[5]))
    return found


def test_a_step_injected_at_the_middle_commit_is_flagged_there_and_drawn(uri, capsys, tmp_path):
    rng = np.random.default_rng(10)
    for commit, scale in ((C1, 1.0), (C2, 1.3), (C3, 1.3)):  # commit 2 made every epoch 30% slower; 3 kept it
        store.bench(uri, commit, rng, engines=("scratch",), scale=scale)
        store.perf(uri, commit, rng, scale=1.0 / scale)
    code, out, _ = history(capsys, uri, tmp_path / "out")
    assert code == 0
    t = tables(out)
    for name in ("xor.scratch.steady_epoch_s", "train_sps.scratch.b64"):
        cells = t[f"Machine 1 {name}"]
        assert [c for c, _ in cells] == [C1[:12], C2[:12], C3[:12]]
        assert cells[0][1] == cells[2][1] == ""
        assert cells[1][1].startswith("step ") and cells[1][1].endswith(" slower")
        assert (tmp_path / "out" / f"{name}.png").read_bytes().startswith(PNG)
    assert all(step == "" for _, step in t["Machine 1 train_sps.torch.b64.t1"])  # the figure that did not move
    assert "2 steps found" in out and "![xor.scratch.steady_epoch_s](xor.scratch.steady_epoch_s.png)" in (
        tmp_path / "out" / "history.md").read_text()


def test_a_store_without_a_step_flags_none(uri, capsys, tmp_path):
    rng = np.random.default_rng(11)
    for commit in (C1, C2, C3):
        store.bench(uri, commit, rng, engines=("scratch", "torch"))
    code, out, _ = history(capsys, uri, tmp_path / "out")
    assert code == 0 and "0 steps found" in out
    assert len(tables(out)) == 2 and all(step == "" for cells in tables(out).values() for _, step in cells)


def test_two_machines_are_never_mixed(uri, capsys, tmp_path):
    rng = np.random.default_rng(12)
    for commit in (C1, C2, C3):
        store.bench(uri, commit, rng, engines=("scratch",))
    for commit in (C2, C3):  # another, slower machine at the later commits: mixed in, it would look like a step
        store.bench(uri, commit, rng, engines=("scratch",), scale=1.5, tags=OTHER_CPU)
    code, out, _ = history(capsys, uri, tmp_path / "out")
    t = tables(out)
    assert [c for c, _ in t["Machine 1 xor.scratch.steady_epoch_s"]] == [C1[:12], C2[:12], C3[:12]]
    assert [c for c, _ in t["Machine 2 xor.scratch.steady_epoch_s"]] == [C2[:12], C3[:12]]
    assert "0 steps found" in out and "## Machine 2: Another CPU @ 9 GHz" in out
    assert {p.name for p in (tmp_path / "out").glob("*.png")} == {
        "xor.scratch.steady_epoch_s-machine1.png", "xor.scratch.steady_epoch_s-machine2.png"}


def test_commits_follow_git_where_the_repository_knows_them_else_the_runs_start_times(uri, capsys, tmp_path,
                                                                                    monkeypatch):
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for message in ("first", "second", "third"):
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                        "--allow-empty", "-m", message], check=True)
    first, second, third = (git.rev_parse(f"HEAD~{n}", repo) for n in (2, 1, 0))
    rng = np.random.default_rng(13)
    for commit in (third, first, second):  # measured out of order
        store.bench(uri, commit, rng, engines=("scratch",))
    monkeypatch.setattr(git, "PROJECT", repo)
    code, out, _ = history(capsys, uri, tmp_path / "out")
    assert "commits in git's order (git rev-list --topo-order)" in out
    assert [c for c, _ in tables(out)["Machine 1 xor.scratch.steady_epoch_s"]] == [first[:12], second[:12],
                                                                                    third[:12]]
    monkeypatch.setattr(git, "PROJECT", tmp_path / "elsewhere")
    code, out, _ = history(capsys, uri, tmp_path / "out")
    assert "commits in the order of their runs' start times (no git repository)" in out
    assert [c for c, _ in tables(out)["Machine 1 xor.scratch.steady_epoch_s"]] == [third[:12], first[:12],
                                                                                    second[:12]]


def test_busy_runs_are_left_out_and_the_filters_choose_figures(uri, capsys, tmp_path):
    rng = np.random.default_rng(14)
    store.bench(uri, C1, rng, engines=("scratch", "torch"), busy={("torch", 0)})
    store.perf(uri, C1, rng)
    code, out, _ = history(capsys, uri, tmp_path / "out", "--experiment", "xor")
    assert set(tables(out)) == {"Machine 1 xor.scratch.steady_epoch_s", "Machine 1 xor.torch.steady_epoch_s"}
    assert "left out: 1 run measured on a busy machine" in out
    code, out, _ = history(capsys, uri, tmp_path / "out", "--figure", "train_sps.*")
    assert set(tables(out)) == {"Machine 1 train_sps.scratch.b64", "Machine 1 train_sps.torch.b64.t1"}
    code, out, err = history(capsys, uri, tmp_path / "out", "--figure", "nosuch")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("harness history: error: no figure matches --figure 'nosuch'; figures: train_sps.")
    code, out, err = history(capsys, uri, tmp_path / "out", "--experiment", "mnist")
    assert code == 1
    assert err == "harness history: error: no bench of experiment 'mnist' in the store; experiments: xor\n"


def test_an_empty_store_says_so_in_one_line(uri, capsys, tmp_path):
    code, out, err = history(capsys, uri, tmp_path / "out")
    assert code == 1 and err.startswith("harness history: error: no bench or perf run in sqlite:") and \
        err.count("\n") == 1
