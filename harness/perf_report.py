"""results/perf.md, written from a `harness perf` run read back from the tracking store."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from harness.perf import BATCHES, BREAKDOWN_BATCHES

RUNTIMES = ("scratch", "torch", "onnxruntime_scratch", "onnxruntime_torch")


def targets(m: Mapping[str, float]) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for each performance target of the project."""
    out = []
    r64 = m["train_sps.scratch.b64"] / m["train_sps.torch.b64"]
    out.append(("scratch training at batch 64 >= 1.8x torch", f"{r64:.2f}x", r64 >= 1.8))
    share = _achieved(m, "scratch", 256) / m["gflops_layers.b256"]
    out.append(("scratch training at batch 256 >= 75% of the matmul peak for its layer shapes",
                f"{share:.0%} ({_achieved(m, 'scratch', 256):.0f} of {m['gflops_layers.b256']:.0f} GFLOP/s; "
                f"{_achieved(m, 'scratch', 256) / m['gflops_square']:.0%} of the 2048² square's "
                f"{m['gflops_square']:.0f})", share >= 0.75))
    for b in (256, 1024):
        r = m[f"infer_sps.scratch.b{b}"] / m[f"infer_sps.onnxruntime_scratch.b{b}"]
        out.append((f"scratch inference at batch {b} >= onnxruntime on the same model", f"{r:.2f}x", r >= 1.0))
    rx = m["xor_steps_per_s.scratch"] / m["xor_steps_per_s.torch"]
    out.append(("XOR steps/s: scratch >= 5x torch", f"{rx:.1f}x", rx >= 5))
    out.append(("scratch peak RSS below torch's", f"{m['rss_peak_mb.scratch']:.0f} MB vs "
                f"{m['rss_peak_mb.torch']:.0f} MB", m["rss_peak_mb.scratch"] < m["rss_peak_mb.torch"]))
    return out


def _matmul_us(m: Mapping[str, float], b: int) -> float:
    return m["train_flops_per_sample"] * b / (m[f"gflops_layers.b{b}"] * 1e9) * 1e6


def _why_not(m: Mapping[str, float]) -> list[str]:
    """For each missed target, what stands in the way, in the measured figures."""
    met = {t: ok for t, _, ok in targets(m)}
    out = []
    if not met["scratch training at batch 256 >= 75% of the matmul peak for its layer shapes"]:
        step = 256 / m["train_sps.scratch.b256"] * 1e6
        mm = _matmul_us(m, 256)
        out.append(f"**Why training at batch 256 stays below 75% of the layer-shape peak**: of a {step:.0f} µs step, "
                   f"the matmuls need {mm:.0f} µs at the measured rate; the other {step - mm:.0f} µs are element-wise "
                   "NumPy passes (bias add, ReLU and its mask, the softmax/cross-entropy head, the bias-gradient sums, "
                   "the optimizer's four passes over every parameter) and the batch gather, each a separate "
                   "single-threaded pass over memory that NumPy cannot fuse, plus cache misses that a step on one "
                   "cached batch does not show. `np.maximum` (ReLU) runs at a quarter of the speed of an add "
                   "on this build (no AVX-512), and it is kept because it is the only one-pass form that maps "
                   "-inf to 0 and NaN to NaN exactly as torch does.")
    if not (met["scratch inference at batch 256 >= onnxruntime on the same model"]
            and met["scratch inference at batch 1024 >= onnxruntime on the same model"]):
        out.append("**Why onnxruntime infers faster**: it adds the bias and applies ReLU inside its GEMM kernel "
                   "(MLAS) and runs every operator on all threads; the scratch engine's forward pass is one BLAS "
                   "call per layer followed by single-threaded NumPy passes for the bias, the activation and the "
                   "softmax. The first layer's matmul alone is most of the time for both, so the gap is those passes.")
    return out


def _achieved(m: Mapping[str, float], engine: str, b: int) -> float:
    return m[f"train_sps.{engine}.b{b}"] * m["train_flops_per_sample"] / 1e9


def markdown(run_id: str, m: Mapping[str, float], params: Mapping[str, str], tags: Mapping[str, str]) -> str:
    lines = ["# nn-harness performance report", "",
             f"`harness perf` run `{run_id}`: MNIST network of `{params.get('experiment')}`, float32, "
             f"{params.get('threads')} threads for every engine and BLAS ({params.get('blas')}), median of "
             f"{params.get('repeats')} repeats after a warm-up, engines interleaved. Machine: "
             f"{tags.get('machine.cpu', '?')}, {tags.get('machine.cores', '?')} cores; NumPy "
             f"{tags.get('version.numpy', '?')}, PyTorch {tags.get('version.torch', '?')}, onnxruntime "
             f"{tags.get('version.onnxruntime', '?')}. Each runtime runs in a process of its own. Written from the "
             "tracking store; nothing typed by hand. On a shared 2-core virtual machine, figures move by 10-20% "
             "from one run to the next; ratios taken within one run move less.", "",
             "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {t} | {v} | {'yes' if ok else '**no**'} |" for t, v, ok in targets(m)]
    lines += ["", "## The machine", "",
              f"float32 matmul, 2048 x 2048 x 2048: **{m['gflops_square']:.0f} GFLOP/s** (the practical peak).",
              "The matmuls of one training step of this network alone (forward, weight gradients, input "
              "gradients), at each batch size, timed interleaved with the training repeats below:", "",
              "| batch | " + " | ".join(map(str, BATCHES)) + " |", "|---" * (len(BATCHES) + 1) + "|",
              "| GFLOP/s | " + " | ".join(f"{m[f'gflops_layers.b{b}']:.0f}" for b in BATCHES) + " |",
              "", "## Training throughput (samples/s)", "",
              f"{m['train_flops_per_sample'] / 1e3:.0f} kFLOP of matmul per training sample.", "",
              "| batch | scratch | torch | scratch / torch | scratch GFLOP/s | share of layer-shape peak | "
              "share of square peak |", "|---|---|---|---|---|---|---|"]
    for b in BATCHES:
        s, t = m[f"train_sps.scratch.b{b}"], m[f"train_sps.torch.b{b}"]
        g = _achieved(m, "scratch", b)
        lines.append(f"| {b} | {s:,.0f} | {t:,.0f} | {s / t:.2f}x | {g:.0f} | {g / m[f'gflops_layers.b{b}']:.0%} | "
                     f"{g / m['gflops_square']:.0%} |")
    lines += ["", "## Inference throughput (samples/s)", "",
              "| batch | scratch | torch | onnxruntime (scratch's file) | onnxruntime (torch's file) | "
              "scratch / onnxruntime | scratch / torch |", "|---|---|---|---|---|---|---|"]
    for b in BATCHES:
        v = {r: m[f"infer_sps.{r}.b{b}"] for r in RUNTIMES}
        lines.append(f"| {b} | " + " | ".join(f"{v[r]:,.0f}" for r in RUNTIMES)
                     + f" | {v['scratch'] / v['onnxruntime_scratch']:.2f}x | {v['scratch'] / v['torch']:.2f}x |")
    xs, xt = m["xor_steps_per_s.scratch"], m["xor_steps_per_s.torch"]
    lines += ["", "## Per-step overhead: XOR, batch 4", "",
              f"scratch {xs:,.0f} steps/s, torch {xt:,.0f} steps/s: **{xs / xt:.1f}x** "
              f"({1e6 / xs:.0f} µs against {1e6 / xt:.0f} µs per step).", "",
              "## Where a scratch training step goes (MNIST network)", "",
              "Each part timed alone, on one batch held in cache; the last row is a step inside a real epoch "
              "(random batches, caches shared), from the training table.", "",
              "| part | " + " | ".join(f"batch {b} (µs)" for b in BREAKDOWN_BATCHES) + " |",
              "|---" * (len(BREAKDOWN_BATCHES) + 1) + "|"]
    names = [k.removeprefix("step_us.").rsplit(".", 1)[0] for k in m if k.startswith("step_us.")]
    for part in dict.fromkeys(names):
        lines.append(f"| {part.replace('_', ' ')} | "
                     + " | ".join(f"{m[f'step_us.{part}.b{b}']:.0f}" for b in BREAKDOWN_BATCHES) + " |")
    lines.append("| matmuls alone, at the layer-shape rate | "
                 + " | ".join(f"{_matmul_us(m, b):.0f}" for b in BREAKDOWN_BATCHES) + " |")
    lines.append("| a step in a real epoch | "
                 + " | ".join(f"{b / m[f'train_sps.scratch.b{b}'] * 1e6:.0f}" for b in BREAKDOWN_BATCHES) + " |")
    lines += ["", *_why_not(m)]
    lines += ["", "## Memory", "",
              f"Peak RSS during one training epoch, each engine in a fresh process: scratch "
              f"{m['rss_peak_mb.scratch']:.0f} MB, torch {m['rss_peak_mb.torch']:.0f} MB "
              f"(kernel high-water marks over the whole process, data loading included: "
              f"{m['rss_hwm_mb.scratch']:.0f} MB and {m['rss_hwm_mb.torch']:.0f} MB).", "",
              f"`harness perf` took {m['perf_wall_s']:.0f} s.", ""]
    return "\n".join(lines)


def write(run_id: str, m: Mapping[str, float], params: Mapping[str, str], tags: Mapping[str, str],
          out_dir: str | Path = "results") -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "perf.md"
    path.write_text(markdown(run_id, m, params, tags))
    return path
