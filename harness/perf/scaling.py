"""What threads buy each runtime: perf.md's section on the training rows timed at 1 thread and at all
the run's threads, in the same run (`harness.perf.runtime.serve` takes both, in an order that
alternates from repeat to repeat).

A figure at one thread has the key of the figure at the run's threads with `.t1` after it
(`train_sps.scratch.b64.t1`). The gain `n / 1` is the n-thread figure over the 1-thread figure, with
its 95% interval by a bootstrap over the repeats (`harness.perf.comparison`); `~` where threads buy
nothing measurable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.perf.runtime import NETWORK_ROWS
from harness.text import table

ONE = ".t1"
RATES = ("train_sps", *(f"{row}_sps" for row in NETWORK_ROWS))  # the training figures, in perf.md's order


def rows(m: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(figure at the run's threads, its 1-thread figure, runtime) for every training row timed at both."""
    out = []
    for key in sorted(m):
        if key.endswith(ONE) and key.split(".")[0] in RATES:
            base = key.removesuffix(ONE)
            if base in m:
                out.append((base, key, base.split(".")[1]))
    return out


def with_runtime(key: str, runtime: str) -> str:
    """The same figure of another runtime: `train_sps.scratch.b64.t1` -> `train_sps.torch.b64.t1`."""
    parts = key.split(".")
    parts[1] = runtime
    return ".".join(parts)


def section(m: Mapping[str, Any], params: Mapping[str, str], labels: Mapping[str, str],
            fig, fig_ratio) -> list[str]:
    """perf.md's thread-scaling section (`fig` and `fig_ratio` write a figure and a ratio as perf.md
    does); nothing for a run timed at one thread count."""
    found = rows(m)
    if not found:
        return []
    n = params.get("threads", "?")
    titles = {"train_sps": f"`{params.get('experiment', '?')}`",
              **{f"{row}_sps": f"`{params.get(f'{row}_experiment', row)}`" for row in NETWORK_ROWS}}

    def place(row: tuple[str, str, str]) -> tuple[int, int, int]:  # network, batch, runtime as perf.md lists them
        rate, _, batch = row[0].split(".")
        return list(titles).index(rate), int(batch[1:]), order(row[2], labels)

    body = []
    for base, one, runtime in sorted(found, key=place):
        rate, _, batch = base.split(".")
        body.append((titles[rate], f"batch {batch[1:]}", labels.get(runtime, runtime), fig(m, one), fig(m, base),
                     fig_ratio(m, base, one),
                     "—" if runtime == "scratch" else fig_ratio(m, with_runtime(one, "scratch"), one)))
    return ["", "## Thread scaling: what threads buy each runtime", "",
            f"Every training row also at 1 thread, in the same process as at {n} threads, the order of the two "
            f"alternating from repeat to repeat; samples/s, median (min–max) over the repeats. `{n} / 1` is the "
            f"gain from {n} threads, with its 95% interval; `~` where it is not significant. The last column "
            "compares the engines at 1 thread, where no runtime's threads wait for a core.", "",
            *table(["network", "batch", "runtime", "1 thread", f"{n} threads", f"{n} / 1", "scratch / it at 1 thread"],
                   body, 3)]


def order(runtime: str, labels: Mapping[str, str]) -> int:
    return list(labels).index(runtime) if runtime in labels else len(labels)


def headline(m: Mapping[str, Any], params: Mapping[str, str], fig_ratio) -> list[str]:
    """The README's line on threads: what the run's threads buy scratch and plain PyTorch at batch 64."""
    a, b = "train_sps.scratch.b64", "train_sps.torch_plain.b64"
    if a + ONE not in m or b + ONE not in m:
        return []
    n = params.get("threads", "?")
    return [f"- threads, training batch 64: {n} threads over 1 give scratch {fig_ratio(m, a, a + ONE)}, plain "
            f"PyTorch {fig_ratio(m, b, b + ONE)}; at 1 thread scratch is **{fig_ratio(m, a + ONE, b + ONE)}** "
            "a plain PyTorch loop."]
