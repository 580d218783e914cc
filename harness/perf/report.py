"""results/perf.md and the README's headline, written from a `harness perf` run read back from the store.

Every figure is shown as median (min–max) over the repeats; a ratio's spread pairs one row's
worst repeat with the other's best, so it is the widest the repeats allow.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness import machine, stats
from harness.perf import INFER_BATCHES, PLAN, REPEATS, TRAIN_BATCHES, comparison, networks, ratio, scaling
from harness.perf.networks import NETWORKS
from harness.perf.runtime import NETWORK_BATCH, NETWORK_ROWS
from harness.text import plural, span, table

TRAIN_ROWS = [r for r, tasks in PLAN.items() if "train" in tasks]
XOR_ROWS = [r for r, tasks in PLAN.items() if "xor" in tasks]
INFER_ROWS = [r for r, tasks in PLAN.items() if "infer" in tasks]
LABELS = {"scratch": "scratch (this project, NumPy)", "torch": "torch (the harness's twin)",
          "torch_plain": "PyTorch, plain loop", "torch_compile": "PyTorch, torch.compile",
          "sklearn": "scikit-learn MLPClassifier", "onnxruntime_scratch": "onnxruntime, scratch's file",
          "onnxruntime_torch": "onnxruntime, torch's file"}
RATES = ("train_sps", "xor_steps_per_s", "infer_sps", *(f"{r}_sps" for r in NETWORK_ROWS))  # shown as ratios
MET = {True: "yes", False: "**no**", "~": "~ (the interval straddles the target)", None: "not measured"}
README_BEGIN, README_END = "<!-- perf-headline:begin -->", "<!-- perf-headline:end -->"


def fig(m: Mapping[str, float], key: str, fmt: str = "{:,.0f}") -> str:
    """A figure as 'median (min–max)', or '—' where it was not measured."""
    if key not in m or m[key] is None or math.isnan(m[key]):
        return "—"
    if f"{key}.min" not in m:
        return fmt.format(m[key])
    return span(m[key], m[key + ".min"], m[key + ".max"], fmt)


def fig_ratio(m: Mapping[str, Any], a: str, b: str) -> str:
    """a / b as `1.31x [1.25–1.38] (1.10–1.50)`: its 95% interval over the repeats, then min–max, `~`
    before it where the interval does not clear 1 ± the noise threshold; a run logged without its
    repeats gives 'median (min–max)'."""
    c = comparison(m, a, b)
    if c is not None:
        return stats.cell(c)
    mid, lo, hi = ratio(m, a, b)
    return "—" if math.isnan(mid) else span(mid, lo, hi, "{:.2f}", "x")


def clears(m: Mapping[str, Any], a: str, b: str, need: float) -> bool | str | None:
    """Whether a / b meets `need`: True only when its whole 95% interval is at or above it, False when
    the whole interval is below, "~" when it straddles `need`; by the median alone for a run logged
    without its repeats; None where a row is missing."""
    c = comparison(m, a, b)
    if c is not None:
        return True if c.low >= need else False if c.high < need else "~"
    mid = ratio(m, a, b)[0]
    return None if math.isnan(mid) else mid >= need


def _spread_warnings(m: Mapping[str, Any]) -> str:
    """One sentence naming the ratios (scratch against each other row) whose repeats spread more than
    the 10% rule allows, with the repeats they would need; or ''."""
    rows = {k.removesuffix(REPEATS) for k in m if k.endswith(REPEATS) and k.split(".")[0] in RATES}
    wide = []
    for a in sorted(r for r in rows if r.split(".")[1] == "scratch"):
        for b in sorted(r for r in rows if r != a and scaling.with_runtime(r, "scratch") == a):
            c = comparison(m, a, b)
            if c is not None and c.repeats_needed:
                wide.append((c.repeats_needed, f"`{a}` / `{b}`, {c.warning()}"))
    if not wide:
        return ""
    shown = sorted(wide, reverse=True)
    return (" **Warning**: the repeats spread too wide for the question in "
            + plural(len(wide), "ratio") + ", such as " + "; ".join(w for _, w in shown[:3]) + ".")


def achieved_gflops(m: Mapping[str, float], b: int, suffix: str = "") -> float:
    return m.get(f"train_sps.scratch.b{b}{suffix}", math.nan) * m["train_flops_per_sample"] / 1e9


def targets(m: Mapping[str, Any]) -> list[tuple[str, str, bool | str | None]]:
    """(target, measured, met) for each performance target: met is True only where the ratio's whole
    interval clears the target, "~" where the interval straddles it, None where a row is missing."""
    out: list[tuple[str, str, bool | str | None]] = []

    def vs(a: str, b: str, need: float, what: str) -> None:
        out.append((what, fig_ratio(m, a, b), clears(m, a, b, need)))

    vs("train_sps.scratch.b64", "train_sps.torch_plain.b64", 2.0, "training, batch 64: scratch >= 2.0x plain PyTorch")
    vs("train_sps.scratch.b256", "train_sps.torch_plain.b256", 1.5,
       "training, batch 256: scratch >= 1.5x plain PyTorch")
    vs("xor_steps_per_s.scratch", "xor_steps_per_s.torch_plain", 5.0, "XOR step: scratch >= 5x plain PyTorch")
    vs("train_sps.scratch.b64", "train_sps.sklearn.b64", 2.5, "training, batch 64: scratch >= 2.5x scikit-learn")
    acc_s, acc_k = m.get("test_accuracy.scratch.b64"), m.get("test_accuracy.sklearn.b64")
    if acc_s is not None and acc_k is not None:
        out.append(("... at the same accuracy (within 0.5 points after one epoch)",
                    f"{acc_s:.2%} vs {acc_k:.2%}", abs(acc_s - acc_k) <= 0.005))
    share = achieved_gflops(m, 256) / m.get("gflops.numpy", math.nan)
    out.append(("training, batch 256: scratch's matmul FLOP rate >= 60% of NumPy's GEMM peak",
                f"{share:.0%} ({achieved_gflops(m, 256):.0f} of {m.get('gflops.numpy', math.nan):.0f} GFLOP/s)",
                None if math.isnan(share) else share >= 0.6))
    for b in INFER_BATCHES:
        vs(f"infer_sps.scratch.b{b}", f"infer_sps.onnxruntime_scratch.b{b}", 1.0,
           f"inference, batch {b}: scratch >= onnxruntime on the same model")
    for row, (title, need, why) in NETWORKS.items():
        vs(f"{row}_sps.scratch.b{NETWORK_BATCH}", f"{row}_sps.torch_plain.b{NETWORK_BATCH}", need,
           f"{title}, training, batch {NETWORK_BATCH}: scratch >= {need}x plain PyTorch ({why})")
    return out


def why_not(m: Mapping[str, float]) -> list[str]:
    """For each target not met, what the measured figures say stands in the way."""
    missed = {t for t, _, ok in targets(m) if ok is False or ok == "~"}
    out = []
    if any(t.startswith("training, batch") and "PyTorch" in t for t in missed) or any(
            "matmul FLOP rate" in t for t in missed):
        b = 256
        step = b / m["train_sps.scratch.b256"] * 1e6
        mm = m["train_flops_per_sample"] * b / (m["gflops.numpy"] * 1e9) * 1e6
        out.append(f"- **Training at batch 256.** A step takes {step:.0f} µs; its matmuls alone would take {mm:.0f} µs "
                   f"at NumPy's measured {machine.GEMM_N}² peak; shapes this small (at most 256 x 784 x 128) do not "
                   "reach that peak, and two OpenBLAS threads synchronise on every call. The rest of the "
                   "step is single-threaded NumPy passes that cannot fuse: the gather of 256 random rows from "
                   "memory, the bias, ReLU and softmax passes, and the optimizer's passes over every parameter "
                   "(the profile above). PyTorch pays the same matmuls through MKL, so the ratio is bounded by "
                   "what the passes around them cost each side.")
    if any(t.startswith("inference") for t in missed):
        out.append("- **Inference.** onnxruntime adds the bias and applies ReLU inside its GEMM (MLAS) and runs its "
                   "operators on every thread; the scratch forward pass is one BLAS call per layer followed by "
                   "separate single-threaded NumPy passes for the bias, the activation and the softmax.")
    titles = {title for title, _, _ in NETWORKS.values() if any(t.startswith(title) for t in missed)}
    out += networks.reasons(m, titles, fig_ratio)
    if any("scikit-learn" in t for t in missed):
        out.append("- **scikit-learn.** MLPClassifier runs the same matmuls on the same OpenBLAS as the scratch "
                   "engine; what separates the two is only the work around them (its per-batch Python loop, the "
                   "gather, the activation and update passes), so the matmuls bound the ratio.")
    return out


def busy_machine(tags: Mapping[str, str]) -> bool:
    """Whether the perf run was measured on a busy machine (a repeat with other processes above the threshold)."""
    return tags.get("harness.busy") == "true"


def busy_note(m: Mapping[str, float], tags: Mapping[str, str]) -> list[str]:
    """perf.md's word on what else the machine did during the repeats: a warning where it was busy."""
    if "busy.others_share" not in m:
        return []
    threshold = float(tags.get("harness.busy_threshold", "nan"))
    share = span(m["busy.others_share"], m["busy.others_share.min"], m["busy.others_share.max"], "{:.0%}")
    if not busy_machine(tags):
        return [f"**Other processes.** They used {share} of the usable cores during a repeat (median, min–max), "
                f"below the {threshold:.0%} above which a run is called measured on a busy machine.", ""]
    busy = int(m.get("busy.busy_repeats", 0))
    return [f"**Measured on a busy machine.** Other processes used {share} of the usable cores during a repeat "
            f"(median, min–max); {busy} of {int(m['busy.others_share.n'])} repeats were above {threshold:.0%}. "
            "The figures below tell of the machine as much as of the runtimes; `harness perf --readme` does not "
            "quote them without `--force`.", ""]


def headline(run_id: str, m: Mapping[str, float], tags: Mapping[str, str], date: str,
             params: Mapping[str, str] | None = None) -> list[str]:
    """The lines the README quotes (between its perf-headline markers)."""
    return [
        f"From `harness perf` run `{run_id[:8]}` on {date}: {tags.get('machine.cpu', '?')}, "
        f"{tags.get('machine.cores_usable', '?')} cores, NumPy on {tags.get('blas.numpy.library', '?')} "
        f"({tags.get('blas.numpy.kernel', '?')} kernel), kernel overrides: {tags.get('env.kernel_overrides', '?')}. "
        "Median (min–max) of fresh-process repeats; a ratio `r [95% interval] (min–max)`, `~` where the interval "
        "does not clear 1 ± 2%; MNIST 784-128-64-10, float32, one whole epoch after a warm-up.",
        "",
        f"- training, batch 64: scratch {fig(m, 'train_sps.scratch.b64')} samples/s; "
        f"**{fig_ratio(m, 'train_sps.scratch.b64', 'train_sps.torch_plain.b64')}** a plain PyTorch loop, "
        f"{fig_ratio(m, 'train_sps.scratch.b64', 'train_sps.torch.b64')} the harness's torch twin, "
        f"{fig_ratio(m, 'train_sps.scratch.b64', 'train_sps.sklearn.b64')} scikit-learn's MLPClassifier;",
        f"- training, batch 256: **{fig_ratio(m, 'train_sps.scratch.b256', 'train_sps.torch_plain.b256')}** "
        "a plain PyTorch loop;",
        f"- XOR, per step: **{fig_ratio(m, 'xor_steps_per_s.scratch', 'xor_steps_per_s.torch_plain')}** "
        "a plain PyTorch loop;",
        "- inference, batch 1024: scratch "
        f"{fig_ratio(m, 'infer_sps.scratch.b1024', 'infer_sps.onnxruntime_scratch.b1024')} onnxruntime on the same "
        "model.",
        *scaling.headline(m, params or {}, fig_ratio),
    ]


def markdown(run_id: str, m: Mapping[str, float], params: Mapping[str, str], tags: Mapping[str, str],
             date: str = "") -> str:
    train_batches = [int(b) for b in params.get("train_batches", ",".join(map(str, TRAIN_BATCHES))).split(",")]
    infer_batches = [int(b) for b in params.get("infer_batches", ",".join(map(str, INFER_BATCHES))).split(",")]
    lines = ["# nn-harness performance report", "",
             f"`harness perf` run `{run_id}`{f' of {date}' if date else ''}, network of `{params.get('experiment')}` "
             f"(float32), {params.get('threads')} threads for every runtime"
             + (", and every training row at 1 thread too" if scaling.rows(m) else "")
             + ". Written from the tracking store; nothing typed by hand.", "",
             f"**Machine.** {machine.summary(tags)}", "",
             *busy_note(m, tags),
             f"**Method.** {params.get('repeats')} repeats. In each, every runtime runs in a fresh process of its "
             "own, one after another, in an order that rotates from repeat to repeat. A training figure is one "
             f"whole epoch ({int(m.get('train_samples', 60000)):,} samples) after a warm-up of "
             f"{float(params.get('warmup_share', 0.1)):.0%} of an epoch, at a constant learning rate"
             + (" (a share of an epoch for the other networks, as their sections say)"
                if any(k.startswith(tuple(f"{r}_sps." for r in NETWORK_ROWS)) for k in m) else "") + "; a per-step "
             f"figure is at least {params.get('min_window_s')} s of steps after a warm-up; an inference figure is "
             f"whole passes over the test set for at least {params.get('min_window_s')} s. Figures are the median "
             "(min–max) over the repeats. A ratio is written `1.31x [1.25–1.38] (1.10–1.50)`: the ratio of the "
             "medians, in brackets its 95% confidence interval by a bootstrap over the repeats, in parentheses the "
             "widest the repeats allow (one side's worst repeat against the other's best). A `~` before it: the "
             f"interval does not clear 1 ± {stats.THRESHOLD:.0%}, no significant difference. A target is met only "
             "when its whole interval clears it." + _spread_warnings(m),
             "", "## Targets", ""]
    lines += table(["target", "measured", "met"], [(t, v, MET[ok]) for t, v, ok in targets(m)], 3)
    missing = {k.removeprefix("perf.missing."): v for k, v in tags.items() if k.startswith("perf.missing.")}
    failed = {k.removeprefix("perf.failed."): v for k, v in tags.items() if k.startswith("perf.failed.")}
    for row, why in {**missing, **failed}.items():
        lines.append(f"\n*{LABELS.get(row, row)}*: {why}")
    lines += ["", "## The machine's GEMM peak", "",
              f"float32 {machine.GEMM_N}² matmul, GFLOP/s: NumPy ({tags.get('blas.numpy.library', '?')}) "
              f"{fig(m, 'gflops.numpy')}; PyTorch ({tags.get('blas.torch.library', '?')}) {fig(m, 'gflops.torch')}."]
    if "gflops_native.numpy" in m:
        lines.append(f"With the kernel overrides removed ({tags.get('env.kernel_overrides')}), in a subprocess: "
                     f"NumPy {fig(m, 'gflops_native.numpy')}, PyTorch {fig(m, 'gflops_native.torch')}.")
    lines += ["", "## Training, samples/s", "",
              f"{m['train_flops_per_sample'] / 1e3:.1f} kFLOP of matmul per training sample (no gradient with "
              "respect to the input data). Accuracy on the test set after the warm-up and the timed epoch.", "",
              "| runtime | " + " | ".join(f"batch {b} | scratch / it | accuracy" for b in train_batches) + " |",
              "|---" * (1 + 3 * len(train_batches)) + "|"]
    for row in TRAIN_ROWS:
        cells = []
        for b in train_batches:
            acc = m.get(f"test_accuracy.{row}.b{b}")
            cells += [fig(m, f"train_sps.{row}.b{b}"),
                      "—" if row == "scratch" else fig_ratio(m, f"train_sps.scratch.b{b}", f"train_sps.{row}.b{b}"),
                      "—" if acc is None else f"{acc:.2%}"]
        lines.append(f"| {LABELS[row]} | " + " | ".join(cells) + " |")
    lines += ["", "scratch's matmul FLOP rate: " + "; ".join(
        f"batch {b} {achieved_gflops(m, b):.0f} GFLOP/s ({achieved_gflops(m, b) / m.get('gflops.numpy', math.nan):.0%}"
        " of NumPy's peak)" for b in train_batches) + "."]
    lines += ["", f"## Per-step overhead: XOR (2-4-1, batch 4, float64, {params.get('threads')} threads), steps/s", "",
              "| runtime | steps/s | µs per step | scratch / it |", "|---|---|---|---|"]
    for row in XOR_ROWS:
        k = f"xor_steps_per_s.{row}"
        us = f"{1e6 / m[k]:.0f}" if k in m else "—"
        lines.append(f"| {LABELS[row]} | {fig(m, k)} | {us} | "
                     + ("—" if row == "scratch" else fig_ratio(m, "xor_steps_per_s.scratch", k)) + " |")
    lines += ["", "## Inference, samples/s", "",
              "| runtime | " + " | ".join(f"batch {b} | scratch / it" for b in infer_batches) + " |",
              "|---" * (1 + 2 * len(infer_batches)) + "|"]
    for row in INFER_ROWS:
        cells = []
        for b in infer_batches:
            k = f"infer_sps.{row}.b{b}"
            cells += [fig(m, k), "—" if row == "scratch" else fig_ratio(m, f"infer_sps.scratch.b{b}", k)]
        lines.append(f"| {LABELS[row]} | " + " | ".join(cells) + " |")
    lines += networks.section(m, params, LABELS, fig, fig_ratio)
    lines += scaling.section(m, params, LABELS, fig, fig_ratio)
    prof = sorted(((v, k.split(".", 2)[2]) for k, v in m.items() if k.startswith("profile.b64.")), reverse=True)
    if prof:
        lines += ["", "## Where a scratch epoch goes (batch 64, cProfile)", "",
                  "Own time of each function over one epoch, as a share of the profiled epoch; the profiler's "
                  "per-call cost inflates the Python-level rows, so these locate the time rather than measure it.",
                  ""]
        lines += table(["function", "share"], [(f"`{name}`", f"{share:.1%}") for share, name in prof], 2)
    lines += ["", "## Memory of one training epoch (MB)", "",
              "Each engine in a fresh process; the baseline is the process before training (interpreter, "
              "libraries, data), the peak is the highest resident memory inside the training window.", "",
              "| engine | baseline | peak | training's own |", "|---|---|---|---|"]
    for e in ("scratch", "torch"):
        if f"rss_peak_mb.{e}" in m:
            lines.append(f"| {e} | {m[f'rss_baseline_mb.{e}']:.0f} | {m[f'rss_peak_mb.{e}']:.0f} | "
                         f"{m[f'rss_train_mb.{e}']:.0f} |")
    reasons = why_not(m)
    if reasons:
        lines += ["", "## What stands in the way of the targets not met", "", *reasons]
    lines += ["", f"`harness perf` took {m.get('perf_wall_s', math.nan):.0f} s.", ""]
    return "\n".join(lines)


def write(run_id: str, m: Mapping[str, float], params: Mapping[str, str], tags: Mapping[str, str],
          out_dir: str | Path = "results", date: str = "", readme: str | Path | None = None) -> Path:
    """results/perf.md; and, where `readme` has the perf-headline markers, the block between them."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "perf.md"
    path.write_text(markdown(run_id, m, params, tags, date))
    if readme is not None and Path(readme).is_file():
        update_readme(Path(readme), headline(run_id, m, tags, date, params))
    return path


def update_readme(readme: Path, lines: list[str]) -> bool:
    """Replace the block between the markers; False (and nothing written) where they are missing."""
    text = readme.read_text()
    pattern = re.compile(re.escape(README_BEGIN) + ".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        return False
    readme.write_text(pattern.sub(lambda _: "\n".join([README_BEGIN, *lines, README_END]), text))
    return True
