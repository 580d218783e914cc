"""perf.md on the rows of other networks (convolutional, recurrent, residual, transformer): each one's table of
samples/s and GFLOP/s, where the scratch engine's step goes by layer kind, and what stands in the way
of a target not met, written from the measured figures.

A row's figures are `<row>_sps.<runtime>.b64` (with `.t1` at one thread), its FLOPs per training
sample `<row>_train_flops_per_sample` as the layer table counts them (merges and normalisation
included), and its step's shares by layer kind `profile.<row>.<kind>` (`harness.perf.runtime._layer_shares`).
`fig` and `fig_ratio` write a figure and a ratio as the rest of perf.md does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from harness.perf.runtime import NETWORK_BATCH, NETWORK_ROWS

# row -> (its title, the speed target: scratch / plain PyTorch, why PyTorch is hard to match there)
NETWORKS = {"conv": ("convolutional network", 0.5, "oneDNN"), "rnn": ("recurrent network", 0.7, "fused kernels"),
            "residual": ("residual network", 0.6, "oneDNN"),
            "transformer": ("transformer", 0.7, "fused attention, softmax and layer-norm kernels")}
RUNTIMES = ("scratch", "torch", "torch_plain")  # the runtimes each row times (`PLAN`'s "networks" task)
AROUND = "the batch's gather, the loss, the optimizer, the graph's gradient sums"  # what no layer times
REST = f"the rest ({AROUND})"
CONVOLUTIONS = ("the scratch engine lowers each convolution to an im2col copy of the input windows and one "
                "GEMM per sample and direction, the batch split between its worker threads (each copying and "
                "multiplying its own samples on one BLAS thread); the copies (forward im2col, the col2im "
                "scatter-add of the input gradient over the kernel offsets) are NumPy passes as large as the "
                "GEMMs' operands, and the GEMMs are thin (a few dozen filters at most), far below BLAS peak")


def gflops(m: Mapping[str, Any], row: str, runtime: str, suffix: str = "") -> float:
    return (m.get(f"{row}_sps.{runtime}.b{NETWORK_BATCH}{suffix}", math.nan)
            * m.get(f"{row}_train_flops_per_sample", math.nan) / 1e9)


def shares(m: Mapping[str, Any], row: str) -> list[tuple[str, float]]:
    """(layer kind, share of scratch's step) from the most to the least, the rest last; [] where not measured."""
    found = sorted(((v, k.split(".", 2)[2]) for k, v in m.items() if k.startswith(f"profile.{row}.")), reverse=True)
    if not found:
        return []
    return [(kind, share) for share, kind in found] + [(REST, max(0.0, 1 - sum(s for s, _ in found)))]


def _timed(m: Mapping[str, Any], row: str, params: Mapping[str, str]) -> str:
    """What a row timed, `20% of an epoch (12,032 samples) after a warm-up of 2% of an epoch` (an older run:
    half an epoch after the training rows' warm-up)."""
    share = float(params.get("network_share", 1.0))
    what = "one whole epoch" if share == 1 else "half an epoch" if share == 0.5 else f"{share:.0%} of an epoch"
    warm = float(params.get("network_warmup_share", params.get("warmup_share", 0.1)))
    return f"{what} ({int(m.get(f'{row}_samples', 60000)):,} samples) after a warm-up of {warm:.0%} of an epoch"


def section(m: Mapping[str, Any], params: Mapping[str, str], labels: Mapping[str, str],
            fig: Callable[..., str], fig_ratio: Callable[..., str]) -> list[str]:
    """perf.md's section of each row the run measured, in `NETWORK_ROWS` order."""
    lines: list[str] = []
    for row in NETWORK_ROWS:
        if not any(k.startswith(f"{row}_sps.") for k in m):
            continue
        title = NETWORKS[row][0]
        lines += ["", f"## {title[0].upper() + title[1:]}, training, samples/s (batch {NETWORK_BATCH})", "",
                  f"`{params.get(f'{row}_experiment', '?')}`: {params.get(f'{row}_network', '?')}, float32. "
                  f"{m.get(f'{row}_train_flops_per_sample', math.nan) / 1e6:.2f} MFLOP per training sample as "
                  f"the layer table counts them; {_timed(m, row, params)}, at a constant learning rate. Accuracy "
                  f"on the test set after it, at {params.get('threads', '?')} threads.", "",
                  "| runtime | samples/s | GFLOP/s | scratch / it | accuracy |", "|---|---|---|---|---|"]
        for runtime in RUNTIMES:
            k = f"{row}_sps.{runtime}.b{NETWORK_BATCH}"
            acc = m.get(f"{row}_accuracy.{runtime}.b{NETWORK_BATCH}")
            lines.append(f"| {labels[runtime]} | {fig(m, k)} | {gflops(m, row, runtime):.1f} | "
                         + ("—" if runtime == "scratch" else fig_ratio(m, f"{row}_sps.scratch.b{NETWORK_BATCH}", k))
                         + f" | {'—' if acc is None else f'{acc:.2%}'} |")
        found = shares(m, row)
        if found:
            lines += ["", f"Where scratch's step goes, each layer's forward and backward timed by kind over "
                          f"{params.get('layer_batches', 'a few')} batches at {params.get('threads', '?')} threads "
                          "(median over the repeats): " + ", ".join(f"{_kind(k)} {s:.0%}" for k, s in found) + "."]
    return lines


def _kind(kind: str) -> str:
    """A share's name: `conv2d`, the `gelu` activation (`activation.gelu`), the rest as it is."""
    if kind == REST:
        return kind
    return f"the `{kind.split('.', 1)[1]}` activation" if kind.startswith("activation.") else f"`{kind}`"


def reasons(m: Mapping[str, Any], missed: set[str], fig_ratio: Callable[..., str]) -> list[str]:
    """For each row whose target was not met (`missed` holds the titles), what stands in its way."""
    out = []
    if "recurrent network" in missed:
        out.append("- **Recurrent layers.** The scratch engine does the input projections of all steps as one "
                   "GEMM, but the recurrence is a Python loop over time: per step a small (batch x units) GEMM "
                   "and a handful of element-wise NumPy passes for the gates, each paying NumPy's call overhead, "
                   "forward and backward. torch's CPU kernels run the whole sequence in C++ with fused gate "
                   "arithmetic.")
    if "convolutional network" in missed:
        out.append(f"- **Convolutions.** {CONVOLUTIONS[0].upper() + CONVOLUTIONS[1:]}. oneDNN convolves directly in "
                   "blocked layouts with JIT-compiled kernels, threads included.")
    if "residual network" in missed:
        out.append(_residual(m, fig_ratio))
    if "transformer" in missed:
        out.append(_transformer(m, fig_ratio))
    return out


def _against_plain(m: Mapping[str, Any], row: str, title: str, fig_ratio: Callable[..., str]) -> str:
    """`- **Title.** scratch trains it at 0.50x [...] the plain loop's rate (a against b GFLOP/s), ... at 1 thread`."""
    a, b = f"{row}_sps.scratch.b{NETWORK_BATCH}", f"{row}_sps.torch_plain.b{NETWORK_BATCH}"
    text = (f"- **{title}.** scratch trains it at {fig_ratio(m, a, b)} the plain loop's rate "
            f"({gflops(m, row, 'scratch'):.1f} against {gflops(m, row, 'torch_plain'):.1f} GFLOP/s)")
    if a + ".t1" in m and b + ".t1" in m:
        text += f", {fig_ratio(m, a + '.t1', b + '.t1')} at 1 thread"
    return text


PASSES = ("attention's projections are GEMMs, but the softmax of its scores is a string of separate NumPy passes "
          "over [batch, heads, steps, steps] (scaling, the row maxima, subtracting them, exp, the row sums, "
          "dividing; backward a product, a row sum, a subtraction and two scalings), around batched products of "
          "tiny per-head matrices (steps x features per head); layer normalisation is another string of passes "
          "over every token (mean, centring, variance, normalising, scaling, shifting; backward as many), and the "
          "exact GELU evaluates Φ in several passes more. Each pass is single-threaded and a trip through memory, "
          "where PyTorch's plain loop (nn.TransformerEncoderLayer) computes the attention through "
          "scaled_dot_product_attention, whose CPU kernel takes the scores, their softmax and the product with "
          "the values block by block, and its layer norm and GELU as one vectorised kernel each way")


def _residual(m: Mapping[str, Any], fig_ratio: Callable[..., str]) -> str:
    """The residual row's reason, from its figures: the ratio, the FLOP rates, the step's shares by kind."""
    text = _against_plain(m, "residual", "Residual network", fig_ratio)
    found = dict(shares(m, "residual"))
    if not found:
        return text + (". The known reasons: scratch's im2col copies and its many NumPy passes "
                       f"(batch normalisation, activations, pooling) around thin GEMMs; {CONVOLUTIONS}.")
    conv, norm = found.get("conv2d", 0.0), found.get("batchnorm", 0.0)
    other = 1 - conv - norm - found[REST]
    return text + (f". Its step goes {conv:.0%} to convolutions, {norm:.0%} to batch normalisation, {other:.0%} to "
                   f"the other layers (activations, pooling, the add) and {found[REST]:.0%} to {AROUND}. In the "
                   f"convolutions, {CONVOLUTIONS}. Batch normalisation is a chain of NumPy passes over every "
                   "activation (the batch's mean and variance, normalising, scaling; backward as many), split "
                   "between the workers but each a trip through memory, where PyTorch's CPU kernel takes the "
                   "statistics and normalises in a few fused, vectorised passes; the activations and the add are "
                   "single-threaded passes more.")


def _transformer(m: Mapping[str, Any], fig_ratio: Callable[..., str]) -> str:
    """The transformer row's reason, from its figures: the ratio, the FLOP rates, the step's shares by kind."""
    text = _against_plain(m, "transformer", "Transformer", fig_ratio)
    found = dict(shares(m, "transformer"))
    if not found:
        return text + f". The known reasons: the softmax and layer-norm passes. In scratch, {PASSES}."
    acts = {k.split(".", 1)[1]: v for k, v in found.items() if k.startswith("activation.")}
    named = {"attention": "attention", "layernorm": "layer normalisation", "linear": "the linear layers",
             "conv2d": "the patch embedding (conv2d)"}
    parts = [f"{found[k]:.0%} to {what}" for k, what in named.items() if k in found]
    if acts:
        parts.insert(min(3, len(parts)), f"{sum(acts.values()):.0%} to the {', '.join(sorted(acts))} activation"
                     + ("s" if len(acts) > 1 else ""))
    other = 1 - sum(found.get(k, 0.0) for k in named) - sum(acts.values()) - found[REST]
    parts += [f"{max(0.0, other):.0%} to the other layers (the adds, tokens, positions, the pool)",
              f"{found[REST]:.0%} to {AROUND}"]
    return text + f". Its step goes {', '.join(parts[:-1])} and {parts[-1]}. In scratch, {PASSES}."
