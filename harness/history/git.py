"""What the project's git repository says about the commits runs were measured at: a revision's full
hash (`git rev-parse`) and the order of commits (`git rev-list --topo-order`). Where git or the
repository is missing, each answer is None and the callers fall back on the store alone."""

from __future__ import annotations

import subprocess
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]  # the repository the harness was run from, as runs tag it
TIMEOUT_S = 10


def _git(repo: Path | None, *args: str) -> str | None:
    """git's output in `repo` (None: the project's repository, `PROJECT`), or None where git fails."""
    try:
        done = subprocess.run(["git", "-C", str(repo or PROJECT), *args], capture_output=True, text=True,
                              timeout=TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def rev_parse(rev: str, repo: Path | None = None) -> str | None:
    """The full hash of the commit `rev` names (a branch, a tag, `HEAD~2`, an abbreviated hash), or None."""
    if rev.startswith("-"):  # never an option to git
        return None
    return _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}") or None


def topo_order(repo: Path | None = None) -> list[str] | None:
    """Every commit the repository reaches from any ref, oldest first, parents before children; None without git."""
    out = _git(repo, "rev-list", "--topo-order", "--reverse", "--all")
    return out.split() if out else None
