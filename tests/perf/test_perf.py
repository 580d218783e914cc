"""The perf tool's method, arithmetic and report; its figures themselves are benchmarks, not tests."""

import pytest

from harness import perf, spec
from harness.perf import report as perf_report
from tests.cli.test_cli import ROOT
from tests.run.machines import QuietMachine


def test_flop_counts_of_the_mnist_network():
    net = spec.load(ROOT / "experiments" / "mnist.toml").network
    forward = 2 * (784 * 128 + 128 * 64 + 64 * 10)
    assert perf.infer_flops_per_sample(net) == forward
    # backward: the weight gradients (as many as forward) and the input gradients of layers 1 and 2
    assert perf.train_flops_per_sample(net) == forward + forward + 2 * (128 * 64 + 64 * 10)


def test_a_spread_is_median_min_max_and_count():
    assert perf.spread([3.0, 1.0, 2.0, 10.0, 2.5]) == {"": 2.5, ".min": 1.0, ".max": 10.0, ".n": 5.0,
                                                       ".repeats": (3.0, 1.0, 2.0, 10.0, 2.5)}


def with_spread(m, key, median, lo, hi):
    m.update({key: median, key + ".min": lo, key + ".max": hi, key + ".n": 5.0})


def fake_metrics(speed=2.0):
    m = {"train_flops_per_sample": 454400.0, "infer_flops_per_sample": 218368.0, "perf_wall_s": 200.0,
         "test_accuracy.scratch.b64": 0.963, "test_accuracy.sklearn.b64": 0.961,
         "rss_baseline_mb.scratch": 250.0, "rss_peak_mb.scratch": 256.0, "rss_train_mb.scratch": 6.0,
         "rss_baseline_mb.torch": 505.0, "rss_peak_mb.torch": 530.0, "rss_train_mb.torch": 25.0,
         "profile.b64.layers.forward:21": 0.4, "profile.b64.matmul": 0.3}
    with_spread(m, "gflops.numpy", 300.0, 290.0, 310.0)
    with_spread(m, "gflops.torch", 305.0, 295.0, 315.0)
    for b in (64, 256):
        with_spread(m, f"train_sps.torch_plain.b{b}", 100_000.0, 90_000.0, 110_000.0)
        with_spread(m, f"train_sps.torch.b{b}", 90_000.0, 85_000.0, 95_000.0)
        with_spread(m, f"train_sps.sklearn.b{b}", 70_000.0, 65_000.0, 75_000.0)
        with_spread(m, f"train_sps.scratch.b{b}", 100_000.0 * speed, 95_000.0 * speed, 105_000.0 * speed)
    with_spread(m, "xor_steps_per_s.scratch", 30_000.0, 29_000.0, 31_000.0)
    with_spread(m, "xor_steps_per_s.torch_plain", 6_000.0, 5_000.0, 7_000.0)
    with_spread(m, "xor_steps_per_s.torch", 4_000.0, 3_500.0, 4_500.0)
    for b in (256, 1024):
        for r in ("scratch", "torch", "onnxruntime_scratch", "onnxruntime_torch"):
            with_spread(m, f"infer_sps.{r}.b{b}", 500_000.0, 450_000.0, 550_000.0)
    return m


def test_ratios_carry_the_widest_spread_the_repeats_allow():
    mid, lo, hi = perf.ratio(fake_metrics(2.0), "train_sps.scratch.b64", "train_sps.torch_plain.b64")
    assert mid == pytest.approx(2.0) and lo == pytest.approx(190 / 110) and hi == pytest.approx(210 / 90)


def test_targets_are_judged_from_the_medians_and_a_missing_row_is_not_a_verdict():
    verdicts = {t: ok for t, _, ok in perf_report.targets(fake_metrics(2.0))}
    assert verdicts["training, batch 64: scratch >= 2.0x plain PyTorch"] is True
    assert verdicts["XOR step: scratch >= 5x plain PyTorch"] is True
    assert verdicts["inference, batch 256: scratch >= onnxruntime on the same model"] is True  # equal counts
    # 256 x 454.4 kFLOP x 200k samples/s = 90.9 GFLOP/s of 300: 30%
    assert verdicts["training, batch 256: scratch's matmul FLOP rate >= 60% of NumPy's GEMM peak"] is False
    slower = {t: ok for t, _, ok in perf_report.targets(fake_metrics(1.5))}
    assert slower["training, batch 64: scratch >= 2.0x plain PyTorch"] is False
    m = fake_metrics(2.0)
    for k in [k for k in m if k.startswith("train_sps.sklearn")]:
        del m[k]
    assert {t: ok for t, _, ok in perf_report.targets(m)}[
        "training, batch 64: scratch >= 2.5x scikit-learn"] is None


def test_the_report_names_the_machine_the_method_and_every_spread():
    tags = {"machine.cpu": "Some CPU", "blas.numpy.library": "openblas", "blas.numpy.kernel": "SkylakeX",
            "env.OPENBLAS_CORETYPE": "Haswell", "env.kernel_overrides": "OPENBLAS_CORETYPE=Haswell",
            "perf.missing.torch_compile": "torch.compile does not work on this machine: no compiler"}
    params = {"threads": "2", "repeats": "5", "experiment": "mnist", "train_batches": "64,256",
              "infer_batches": "256,1024", "warmup_share": "0.1", "min_window_s": "1.0"}
    md = perf_report.markdown("run1", fake_metrics(), params, tags, "2026-11-23")
    for section in ("## Targets", "## The machine's GEMM peak", "## Training, samples/s", "## Per-step overhead",
                    "## Inference, samples/s", "## Where a scratch epoch goes", "## Memory of one training epoch"):
        assert section in md
    assert "Some CPU" in md and "`OPENBLAS_CORETYPE=Haswell`" in md and "SkylakeX" in md
    assert "| PyTorch, plain loop | 100,000 (90,000–110,000) | 2.00x (1.73–2.33) | — |" in md
    assert "no compiler" in md and "2026-11-23" in md


def with_repeats(m, key, values):
    m.update({key + suffix: v for suffix, v in perf.spread(values).items()})


def test_a_ratio_with_its_repeats_has_an_interval_and_a_target_is_met_only_when_the_interval_clears_it():
    m = fake_metrics(2.0)
    with_repeats(m, "train_sps.torch_plain.b64", [100_000.0, 101_000.0, 99_000.0, 100_500.0, 99_500.0])
    with_repeats(m, "train_sps.scratch.b64", [210_000.0, 212_000.0, 208_000.0, 211_000.0, 209_000.0])
    c = perf.comparison(m, "train_sps.scratch.b64", "train_sps.torch_plain.b64")
    assert c.low > 2.0 and c.verdict == 1 and c.lowest == pytest.approx(208 / 101)
    target = "training, batch 64: scratch >= 2.0x plain PyTorch"
    assert {t: ok for t, _, ok in perf_report.targets(m)}[target] is True
    assert perf_report.fig_ratio(m, "train_sps.scratch.b64", "train_sps.torch_plain.b64") == perf_report.stats.cell(c)
    with_repeats(m, "train_sps.scratch.b64", [190_000.0, 230_000.0, 200_000.0, 180_000.0, 220_000.0])  # median 2.0x
    assert {t: ok for t, _, ok in perf_report.targets(m)}[target] == "~"
    with_repeats(m, "train_sps.scratch.b64", [100_000.0, 101_000.0, 99_000.0, 100_500.0, 99_500.0])  # alike
    assert perf_report.fig_ratio(m, "train_sps.scratch.b64", "train_sps.torch_plain.b64").startswith("~1.00x [")
    assert {t: ok for t, _, ok in perf_report.targets(m)}[target] is False


def test_the_repeats_go_to_the_store_as_a_history_and_come_back_in_order(tmp_path):
    from harness import tracking

    uri = tracking.connect(f"sqlite:///{tmp_path / 'mlflow.db'}")
    metrics = {"gflops.numpy": 300.0}
    with_repeats(metrics, "train_sps.scratch.b64", [3.0, 1.0, 2.0])
    run_id = tracking.log_perf(metrics, {"repeats": "3"}, uri)
    stored, params, _ = tracking.read_run(run_id, uri)
    assert stored["train_sps.scratch.b64.repeats"] == (3.0, 1.0, 2.0) and stored["train_sps.scratch.b64"] == 2.0
    assert stored["gflops.numpy"] == 300.0 and params["repeats"] == "3"


def test_the_readme_headline_is_rewritten_between_its_markers_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{perf_report.README_BEGIN}\nold figure 9.9x\n{perf_report.README_END}\nrest\n")
    lines = perf_report.headline("abcdef123456", fake_metrics(), {"machine.cpu": "Some CPU"}, "2026-11-23")
    assert perf_report.update_readme(readme, lines)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("rest\n") and "9.9x" not in text
    assert "2.00x (1.73–2.33)" in text and "Some CPU" in text and "2026-11-23" in text
    plain = tmp_path / "OTHER.md"
    plain.write_text("no markers\n")
    assert not perf_report.update_readme(plain, lines) and plain.read_text() == "no markers\n"


def test_the_committed_readme_quotes_the_committed_perf_report():
    """No hand-typed figure: the README's headline block is what `harness perf` wrote with results/perf.md."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split(perf_report.README_BEGIN)[1].split(perf_report.README_END)[0]
    perf_md = (ROOT / "results" / "perf.md").read_text()
    run_id = block.split("`harness perf` run `")[1].split("`")[0]
    assert f"run `{run_id}" in perf_md
    for ratio_text in [w for w in block.split("**") if w.endswith(")") and ("x (" in w or "x [" in w)]:
        assert ratio_text in perf_md, ratio_text


def test_measure_runs_every_row_in_fresh_processes_and_says_why_a_row_is_missing():
    xor = ROOT / "experiments" / "xor.toml"
    method = perf.Method(train_batches=(4,), infer_batches=(4,), warmup_share=0.5, min_window_s=0.05)
    logged = []
    m, settings, tags = perf.measure(xor, xor, threads=2, repeats=2, log=logged.append, method=method,
                                     runtimes=("scratch", "torch_plain", "sklearn", "onnxruntime_scratch"),
                                     readings=QuietMachine())
    assert m["train_sps.scratch.b4.n"] == 2 and m["train_sps.torch_plain.b4.n"] == 2
    assert m["train_sps.scratch.b4.min"] <= m["train_sps.scratch.b4"] <= m["train_sps.scratch.b4.max"]
    assert m["xor_steps_per_s.scratch"] > 0 and m["infer_sps.onnxruntime_scratch.b4"] > 0
    assert 0 <= m["test_accuracy.scratch.b4"] <= 1 and m["gflops.numpy"] > 0
    assert "softmax + cross-entropy" in tags["perf.missing.sklearn"]  # XOR is not a task MLPClassifier stands for
    assert tags["blas.numpy.library"] and tags["machine.cpu"] and settings["train_batches"] == "4"
    assert m["rss_peak_mb.scratch"] >= m["rss_baseline_mb.scratch"] > 0
    assert any("repeat 2/2" in line for line in logged)
    # each repeat's window watched the machine (played quiet here, the fresh processes its own children)
    assert m["busy.others_share.n"] == 2 and m["busy.busy_repeats"] == 0 and tags["harness.busy"] == "false"
    # every training row at the run's 2 threads and at 1; the other rows and the machine record at 2
    assert settings["thread_counts"] == "2,1" and tags["blas.numpy.threads"] == "2"
    assert m["train_sps.scratch.b4.t1.n"] == 2 and m["train_sps.torch_plain.b4.t1"] > 0
    assert 0 <= m["test_accuracy.scratch.b4.t1"] <= 1
    assert not [k for k in m if k.endswith(".t1") and not k.startswith(("train_sps.", "test_accuracy."))]


def test_the_bench_report_checks_its_speedup_against_perf_within_their_spreads():
    import pandas as pd

    from harness.report import perf_agreement

    parents = pd.DataFrame([{"run_id": "p1", "group": "mnist", "params.experiment": "mnist", "metrics.speedup": 1.3,
                             "metrics.speedup_min": 1.2, "metrics.speedup_max": 1.4}])
    children = pd.DataFrame([{"tags.mlflow.parentRunId": "p1", "params.training.batch_size": "64"}])
    m = fake_metrics(1.0)  # perf: scratch 100k (95-105k), torch 90k (85-95k): 1.11x (1.00-1.24)
    lines = perf_agreement(parents, children, ("abcdef12", m, {"experiment": "mnist"}, {}))
    assert "- mnist, batch 64: bench 1.20–1.40, perf 1.00–1.24: the ranges overlap." in lines
    parents.loc[0, ["metrics.speedup", "metrics.speedup_min", "metrics.speedup_max"]] = [2.0, 1.9, 2.1]
    assert any("do not overlap" in line for line in perf_agreement(parents, children, ("abcdef12", m,
                                                                                       {"experiment": "mnist"}, {})))
    assert perf_agreement(parents, children, None) == []
    with_repeats(m, "train_sps.scratch.b64", [100_000.0, 99_000.0, 101_000.0])
    with_repeats(m, "train_sps.torch.b64", [50_000.0, 49_000.0, 51_000.0])  # 2.00x, an interval near it
    parents.loc[0, ["metrics.speedup_ci_low", "metrics.speedup_ci_high"]] = [1.95, 2.05]
    lines = perf_agreement(parents, children, ("abcdef12", m, {"experiment": "mnist"}, {}))
    assert any(line.startswith("- mnist, batch 64: bench 1.95–2.05, perf 1.9") and "95% intervals overlap" in line
               for line in lines)


def test_perf_without_the_data_says_so_in_one_line_before_measuring(tmp_path, monkeypatch):
    import subprocess
    import sys

    env = {**__import__("os").environ, "HARNESS_DATA_DIR": str(tmp_path / "empty")}
    done = subprocess.run([sys.executable, "-m", "harness.cli", "perf", "--experiment",
                           str(ROOT / "experiments" / "mnist.toml"), "--xor", str(ROOT / "experiments" / "xor.toml"),
                           "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "harness data fetch mnist" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "m.db").exists()


def test_the_convolution_row_reports_samples_gflops_and_its_target():
    m = fake_metrics()
    m.update({"conv_train_flops_per_sample": 2_000_000.0, "conv_samples": 60000.0,
              "conv_accuracy.scratch.b64": 0.985, "conv_accuracy.torch_plain.b64": 0.986})
    with_spread(m, "conv_sps.scratch.b64", 4_000.0, 3_800.0, 4_200.0)
    with_spread(m, "conv_sps.torch_plain.b64", 10_000.0, 9_000.0, 11_000.0)
    params = {"threads": "2", "repeats": "5", "experiment": "mnist", "conv_experiment": "mnist_cnn",
              "conv_network": "[1, 28, 28] -> conv2d 6 k5 p2 relu -> 10 softmax"}
    md = perf_report.markdown("run1", m, params, {}, "2026-12-01")
    assert "## Convolutional network, training, samples/s (batch 64)" in md
    assert "`mnist_cnn`: [1, 28, 28] -> conv2d 6 k5 p2 relu -> 10 softmax" in md
    # 4,000 samples/s x 2 MFLOP = 8 GFLOP/s; torch 20; the ratio 0.40x, its spread 3,800/11,000 to 4,200/9,000
    assert "| scratch (this project, NumPy) | 4,000 (3,800–4,200) | 8.0 | — | 98.50% |" in md
    assert "| PyTorch, plain loop | 10,000 (9,000–11,000) | 20.0 | 0.40x (0.35–0.47) | 98.60% |" in md
    verdicts = {t: ok for t, _, ok in perf_report.targets(m)}
    assert verdicts["convolutional network, training, batch 64: scratch >= 0.5x plain PyTorch (oneDNN)"] is False
    assert "**Convolutions.**" in md
    del m["conv_sps.torch_plain.b64"]
    assert {t: ok for t, _, ok in perf_report.targets(m)}[
        "convolutional network, training, batch 64: scratch >= 0.5x plain PyTorch (oneDNN)"] is None


def test_perf_md_says_when_its_figures_came_from_a_busy_machine():
    params = {"threads": "2", "repeats": "5", "experiment": "mnist"}
    m = fake_metrics()
    m.update({"busy.others_share": 0.05, "busy.others_share.min": 0.01, "busy.others_share.max": 0.6,
              "busy.others_share.n": 5.0, "busy.busy_repeats": 1.0})
    busy = perf_report.markdown("run1", m, params, {"harness.busy": "true", "harness.busy_threshold": "0.1"})
    assert "**Measured on a busy machine.** Other processes used 5% (1%–60%) of the usable cores" in busy
    assert "1 of 5 repeats were above 10%" in busy
    quiet = perf_report.markdown("run1", m, params, {"harness.busy": "false", "harness.busy_threshold": "0.1"})
    assert "Measured on a busy machine" not in quiet and "**Other processes.** They used 5% (1%–60%)" in quiet
    assert "Other processes" not in perf_report.markdown("run1", fake_metrics(), params, {})  # an older run


@pytest.mark.parametrize("busy,force,code,rewritten", [(True, False, 1, False), (True, True, 0, True),
                                                       (False, False, 0, True)])
def test_perf_refuses_the_readme_headline_from_a_busy_run_unless_forced(tmp_path, monkeypatch, capsys, busy, force,
                                                                        code, rewritten):
    from harness import cli

    m = fake_metrics()
    m.update({"busy.others_share": 0.5, "busy.others_share.min": 0.4, "busy.others_share.max": 0.7,
              "busy.others_share.n": 5.0, "busy.busy_repeats": 5.0 if busy else 0.0})
    tags = {"harness.busy": str(busy).lower(), "harness.busy_threshold": "0.1", "machine.cpu": "Some CPU"}
    settings = {"threads": "2", "repeats": "5", "experiment": "mnist"}
    asked = {}
    monkeypatch.setattr(perf, "measure", lambda *a, **k: (asked.update(k), (m, settings, tags))[1])
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{perf_report.README_BEGIN}\nold figure 9.9x\n{perf_report.README_END}\n")
    xor = ROOT / "experiments" / "xor.toml"
    argv = ["perf", "--experiment", xor, "--xor", xor, "--cnn", "", "--rnn", "", "--resnet", "", "--vit", "",
            "--readme", readme, "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}", "--out", tmp_path / "out",
            *(["--force"] * force)]
    assert cli.main([str(a) for a in argv]) == code
    assert asked["networks"] == {}  # '' leaves each network's row out
    out = capsys.readouterr().out
    assert ("9.9x" not in readme.read_text()) == rewritten
    refusals = [line for line in out.splitlines() if "not rewritten" in line]
    assert len(refusals) == (0 if rewritten else 1)
    if refusals:
        assert "measured on a busy machine" in refusals[0] and "70% of the cores" in refusals[0]
        assert "--force" in refusals[0]
    assert ("Measured on a busy machine" in (tmp_path / "out" / "perf.md").read_text()) == busy


def test_the_thread_scaling_section_shows_what_threads_buy_each_runtime_at_batch_and_network():
    m = fake_metrics(2.0)
    with_repeats(m, "train_sps.scratch.b64", [200.0, 210.0, 190.0, 205.0, 195.0])
    with_repeats(m, "train_sps.scratch.b64.t1", [100.0, 105.0, 95.0, 102.0, 98.0])
    with_repeats(m, "train_sps.torch_plain.b64", [100.0, 105.0, 95.0, 102.0, 98.0])
    with_repeats(m, "train_sps.torch_plain.b64.t1", [50.0, 52.0, 48.0, 51.0, 49.0])
    with_repeats(m, "conv_sps.scratch.b64", [10.0, 11.0, 9.0, 10.5, 9.5])
    with_repeats(m, "conv_sps.scratch.b64.t1", [10.0, 11.0, 9.0, 10.5, 9.5])
    params = {"threads": "2", "repeats": "5", "experiment": "mnist", "conv_experiment": "mnist_cnn"}
    md = perf_report.markdown("run1", m, params, {}, "2026-12-05")
    assert "2 threads for every runtime, and every training row at 1 thread too." in md
    section = md.split("## Thread scaling: what threads buy each runtime")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows[0].startswith("| `mnist` | batch 64 | scratch (this project, NumPy) | 100 (95–105) | 200 (190–210) "
                              "| 2.00x [")
    assert rows[1].startswith("| `mnist` | batch 64 | PyTorch, plain loop | 50 (48–52) | 100 (95–105) | 2.00x [")
    assert rows[1].endswith("(1.83–2.19) |")  # scratch / plain at 1 thread: 100 / 50, its band 95/52 to 105/48
    assert rows[2].startswith("| `mnist_cnn` | batch 64 | scratch (this project, NumPy) | 10 (9–11) | 10 (9–11) "
                              "| ~1.00x [")
    assert len(rows) == 3  # a row timed at one thread count only has no line
    headline = "\n".join(perf_report.headline("run1", m, {}, "2026-12-05", params))
    assert "2 threads over 1 give scratch 2.00x [" in headline and "at 1 thread scratch is **2.00x [" in headline
    assert "Thread scaling" not in perf_report.markdown("run1", fake_metrics(), params, {})  # an older run


def test_a_spread_warning_pairs_figures_taken_at_the_same_thread_count():
    m = fake_metrics(2.0)
    with_repeats(m, "train_sps.scratch.b64.t1", [100.0, 150.0, 70.0, 120.0, 90.0])  # noisy, near the other side
    with_repeats(m, "train_sps.torch.b64.t1", [100.0, 101.0, 99.0, 100.5, 99.5])
    with_repeats(m, "train_sps.torch.b64", [100.0, 102.0, 98.0, 101.0, 99.0])  # at 2 threads: not its pair
    md = perf_report.markdown("run1", m, {"threads": "2", "repeats": "5", "experiment": "mnist"}, {})
    assert "`train_sps.scratch.b64.t1` / `train_sps.torch.b64.t1`" in md
    assert "`train_sps.scratch.b64.t1` / `train_sps.torch.b64`," not in md


def residual_metrics(scratch=3_000.0):
    """A run with the residual row: scratch at `scratch` samples/s against plain PyTorch's 6,000, at 2 threads and 1,
    and scratch's step timed by layer kind."""
    m = fake_metrics()
    m.update({"residual_train_flops_per_sample": 7_500_000.0, "residual_samples": 12032.0,
              "residual_accuracy.scratch.b64": 0.95, "residual_accuracy.torch_plain.b64": 0.951,
              "profile.residual.conv2d": 0.6, "profile.residual.batchnorm": 0.2, "profile.residual.activation": 0.05,
              "profile.residual.add": 0.01, "profile.residual.maxpool2d": 0.04})
    for suffix in ("", ".t1"):
        with_repeats(m, f"residual_sps.scratch.b64{suffix}", [scratch * f for f in (1.0, 1.01, 0.99, 1.005, 0.995)])
        with_repeats(m, f"residual_sps.torch.b64{suffix}", [5_000.0, 5_050.0, 4_950.0, 5_020.0, 4_980.0])
        with_repeats(m, f"residual_sps.torch_plain.b64{suffix}", [6_000.0, 6_060.0, 5_940.0, 6_030.0, 5_970.0])
    params = {"threads": "2", "repeats": "5", "experiment": "mnist", "residual_experiment": "mnist_resnet",
              "residual_network": "[1, 28, 28] -> conv2d 16 k3 p1 -> batchnorm relu -> ... -> 10 softmax",
              "network_share": "0.2", "network_warmup_share": "0.02", "layer_batches": "30"}
    return m, params


RESIDUAL_TARGET = "residual network, training, batch 64: scratch >= 0.6x plain PyTorch (oneDNN)"


def test_the_residual_row_reports_samples_gflops_its_target_and_what_stands_in_its_way():
    m, params = residual_metrics(3_000.0)  # 0.50x plain PyTorch: below the 0.6x target
    md = perf_report.markdown("run1", m, params, {}, "2026-12-05")
    section = md.split("## Residual network, training, samples/s (batch 64)")[1].split("\n## ")[0]
    assert "`mnist_resnet`: [1, 28, 28] -> conv2d 16 k3 p1" in section and "7.50 MFLOP per training sample" in section
    assert "20% of an epoch (12,032 samples) after a warm-up of 2% of an epoch" in section
    # 3,000 samples/s x 7.5 MFLOP = 22.5 GFLOP/s; plain PyTorch 6,000: 45.0
    assert "| scratch (this project, NumPy) | 3,000 (2,970–3,030) | 22.5 | — | 95.00% |" in section
    assert "| PyTorch, plain loop | 6,000 (5,940–6,060) | 45.0 | 0.50x [" in section
    assert "over 30 batches at 2 threads" in section and "`conv2d` 60%, `batchnorm` 20%" in section
    assert "the rest (the batch's gather, the loss, the optimizer, the graph's gradient sums) 10%" in section
    assert {t: ok for t, _, ok in perf_report.targets(m)}[RESIDUAL_TARGET] is False
    assert f"| {RESIDUAL_TARGET} | 0.50x [" in md
    why = md.split("## What stands in the way of the targets not met")[1]
    assert "**Residual network.** scratch trains it at 0.50x [" in why and "(22.5 against 45.0 GFLOP/s)" in why
    assert "60% to convolutions, 20% to batch normalisation, 10% to the other layers" in why
    scaling = md.split("## Thread scaling")[1].splitlines()
    scaling_rows = [line for line in scaling if line.startswith("| `mnist_resnet`")]
    assert len(scaling_rows) == 3 and "a share of an epoch for the other networks" in md
    m, params = residual_metrics(4_200.0)  # 0.70x: the target met, nothing said against it
    assert {t: ok for t, _, ok in perf_report.targets(m)}[RESIDUAL_TARGET] is True
    assert "**Residual network.**" not in perf_report.markdown("run1", m, params, {}, "2026-12-05")


def test_a_residual_row_without_its_layer_timing_names_the_known_reason():
    m, params = residual_metrics(3_000.0)
    for k in [k for k in m if k.startswith("profile.residual.")]:
        del m[k]
    md = perf_report.markdown("run1", m, params, {}, "2026-12-05")
    assert "Where scratch's step goes" not in md
    assert "The known reasons: scratch's im2col copies and its many NumPy passes" in md


def test_an_older_run_without_the_residual_row_still_renders():
    m = fake_metrics()  # a run of an older harness: conv and rnn rows timed half an epoch after the 10% warm-up
    m.update({"conv_train_flops_per_sample": 2_000_000.0, "conv_samples": 30016.0})
    with_spread(m, "conv_sps.scratch.b64", 4_000.0, 3_800.0, 4_200.0)
    with_spread(m, "conv_sps.torch_plain.b64", 10_000.0, 9_000.0, 11_000.0)
    params = {"threads": "2", "repeats": "5", "experiment": "mnist", "conv_experiment": "mnist_cnn",
              "warmup_share": "0.1", "network_share": "0.5"}
    md = perf_report.markdown("run1", m, params, {}, "2026-12-01")
    assert "half an epoch (30,016 samples) after a warm-up of 10% of an epoch" in md
    assert "## Residual network" not in md and "**Residual network.**" not in md
    assert f"| {RESIDUAL_TARGET} | — | not measured |" in md


def test_measure_times_the_residual_row_on_every_runtime_and_scratch_s_layers_by_kind(mnist_ready):
    xor = ROOT / "experiments" / "xor.toml"
    method = perf.Method(train_batches=(4,), infer_batches=(4,), warmup_share=0.5, min_window_s=0.05,
                         network_share=0.003, network_warmup_share=0.001, layer_batches=2)
    m, settings, _ = perf.measure(xor, xor, threads=2, repeats=1, log=lambda _: None, method=method,
                                  runtimes=("scratch", "torch", "torch_plain"), readings=QuietMachine(),
                                  networks={"residual": ROOT / "experiments" / "mnist_resnet.toml"})
    for runtime in ("scratch", "torch", "torch_plain"):
        assert m[f"residual_sps.{runtime}.b64"] > 0 and m[f"residual_sps.{runtime}.b64.t1"] > 0
        assert 0 <= m[f"residual_accuracy.{runtime}.b64"] <= 1
        assert f"residual_accuracy.{runtime}.b64.t1" not in m  # the accuracy at the run's threads only
    assert m["residual_samples"] == 3 * 64 and settings["residual_experiment"] == "mnist_resnet"
    assert m["residual_train_flops_per_sample"] > 0
    shares = {k.split(".")[2]: v for k, v in m.items() if k.startswith("profile.residual.")}
    assert {"conv2d", "batchnorm", "add", "activation", "maxpool2d"} <= set(shares)
    assert all(0 < v < 1 for v in shares.values()) and sum(shares.values()) <= 1
