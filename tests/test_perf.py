"""The perf tool's arithmetic and plumbing; its figures themselves are benchmarks, not tests."""

import pytest

from harness import perf, perf_report, spec
from tests.test_cli import ROOT


def test_flop_counts_of_the_mnist_network():
    net = spec.load(ROOT / "experiments" / "mnist.toml").network
    forward = 2 * (784 * 128 + 128 * 64 + 64 * 10)
    assert perf.infer_flops_per_sample(net) == forward
    # backward: the weight gradients (as many as forward) and the input gradients of layers 1 and 2
    assert perf.train_flops_per_sample(net) == forward + forward + 2 * (128 * 64 + 64 * 10)


def fake_metrics(scale_scratch=2.0):
    m = {"train_flops_per_sample": 454400.0, "infer_flops_per_sample": 218368.0, "gflops_square": 180.0,
         "perf_wall_s": 60.0, "xor_steps_per_s.scratch": 20000.0, "xor_steps_per_s.torch": 2000.0,
         "rss_peak_mb.scratch": 250.0, "rss_peak_mb.torch": 530.0, "rss_hwm_mb.scratch": 800.0,
         "rss_hwm_mb.torch": 850.0}
    for b in perf.BREAKDOWN_BATCHES:
        m.update({f"step_us.gather.b{b}": 10.0, f"step_us.forward.b{b}": 100.0,
                  f"step_us.loss_and_backward.b{b}": 150.0, f"step_us.optimizer.b{b}": 40.0})
    for b in perf.BATCHES:
        m[f"gflops_layers.b{b}"] = 150.0
        m[f"train_sps.torch.b{b}"] = 1000.0 * b
        m[f"train_sps.scratch.b{b}"] = 1000.0 * b * scale_scratch
        for r in perf_report.RUNTIMES:
            m[f"infer_sps.{r}.b{b}"] = 5000.0 * b
    return m


def test_targets_are_judged_from_the_figures():
    verdicts = {t: ok for t, _, ok in perf_report.targets(fake_metrics(2.0))}
    assert verdicts["scratch training at batch 64 >= 1.8x torch"]
    assert verdicts["XOR steps/s: scratch >= 5x torch"] and verdicts["scratch peak RSS below torch's"]
    assert verdicts["scratch inference at batch 256 >= onnxruntime on the same model"]  # equal counts as met
    # 256 samples/step x 454.4 kFLOP x 512k samples/s = 116 GFLOP/s of 150: 78%
    assert verdicts["scratch training at batch 256 >= 75% of the matmul peak for its layer shapes"]
    slower = {t: ok for t, _, ok in perf_report.targets(fake_metrics(1.5))}
    assert not slower["scratch training at batch 64 >= 1.8x torch"]


def test_the_report_shows_every_section_as_ratios():
    md = perf_report.markdown("run1", fake_metrics(), {"threads": "2", "repeats": "5", "experiment": "mnist",
                                                      "blas": "openblas"}, {"machine.cpu": "cpu"})
    for section in ("## Targets", "## The machine", "## Training throughput", "## Inference throughput",
                    "## Per-step overhead", "## Where a scratch training step goes", "## Memory"):
        assert section in md
    assert "| 64 | 128,000 | 64,000 | 2.00x |" in md
    assert "**10.0x**" in md


@pytest.mark.parametrize("kind", ["scratch", "torch"])
def test_a_runtime_worker_times_training_and_inference_in_its_own_process(kind):
    s = spec.load(ROOT / "experiments" / "addition.toml")
    worker = perf._Runtime(kind, s, threads=1)
    try:
        assert worker.proc.pid != __import__("os").getpid()
        assert 0 < worker.ask("train", 4, 10, 0) < 30
        assert 0 < worker.ask("infer", 16, 64) < 30
    finally:
        worker.close()
    assert not worker.proc.is_alive()
