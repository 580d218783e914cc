"""The report's text and figures: one figure format, no repeated lines, a window per table,
curves with one band per engine on fitted axes, resources of the training window on linear axes."""

import re

import numpy as np
import pandas as pd
import pytest

from harness import report, tracking
from harness.report import plots as report_plots
from harness.run import bench
from harness.text import figure, plural
from tests.cli.test_cli import ROOT
from tests.run import machines
from tests.run.test_bench import write

XOR = (ROOT / "experiments" / "xor.toml").read_text().replace("epochs = 500", "epochs = 150").replace(
    "seeds = [0, 1, 2]", "seeds = [0, 1]")
ONE_SEED = (ROOT / "experiments" / "addition_linear.toml").read_text().replace(
    "seeds = [0, 1, 2]", "seeds = [0]").replace("epochs = 30", "epochs = 12").replace(
    'engines = ["scratch", "torch"]', 'engines = ["scratch"]')
SEPARATOR = re.compile(r"\|[-:|]+\|")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    bench_id, _ = bench.bench([write(folder, "xor", XOR), write(folder, "one_seed", ONE_SEED)], uri=uri,
                              out=lambda _: None, executor=machines.quiet())
    r = report.build(bench_id, folder / "out", uri, attach=False, log=lambda *_: None)
    parents, children = tracking.bench_runs(bench_id, uri)
    return {"report": r, "md": (folder / "out" / "report.md").read_text(), "parents": parents,
            "children": children, "uri": uri}


@pytest.mark.parametrize("value,spread,text", [
    (0.442, 0.0345, "0.44 ± 0.03"),  # one digit of spread, the value to the same place
    (0.9990, 0.0017, "0.9990 ± 0.0017"),  # two digits when the spread begins with 1 or 2
    (45398, 3467, "45,000 ± 3,000"),
    (113464, 292, "113,460 ± 290"),
    (106.2, 3.1, "106 ± 3"), (7990.4, 70.2, "7,990 ± 70"),  # separators from 1,000 up, in every column
    (3.11e-5, 7.42e-8, "(3.110 ± 0.007)e-05"),  # small figures share one power of ten
    (1.0, 0.0, "1.000"), (0.8182, None, "0.8182"), (121597, None, "121,600"),  # no spread: 4 digits
    (float("nan"), 0.1, "—"), (None, None, "—"),
    (-1e-5, 0.0, "-1.000e-05"), (0.0, 0.0, "0"),
])
def test_a_figure_is_written_to_the_digits_its_spread_supports(value, spread, text):
    assert figure(value, spread) == text


@pytest.mark.parametrize("n,word,text", [(1, "seed", "1 seed"), (3, "seed", "3 seeds"), (0, "run", "0 runs"),
                                         (10000, "test sample", "10,000 test samples")])
def test_plurals(n, word, text):
    assert plural(n, word) == text


def test_the_x_axis_stops_where_the_curves_have_settled():
    steps = np.arange(1, 501)
    falls_fast = pd.DataFrame({"mean": 0.7 * np.exp(-steps / 10) + 1e-4}, index=steps)
    end, settled = report_plots.window_end([falls_fast], 500)
    assert 40 <= settled <= 50 and end == int(np.ceil(report_plots.MARGIN * settled))  # 1% of the fall: ~46
    assert report_plots.window_end([falls_fast.iloc[:8]], 8)[0] == 8  # a short run is shown whole
    keeps_falling = pd.DataFrame({"mean": 1.0 - steps / 500}, index=steps)
    assert report_plots.window_end([falls_fast, keeps_falling], 500)[0] == 500  # the slower curve decides
    flat = pd.DataFrame({"mean": np.ones(500)}, index=steps)
    assert report_plots.window_end([flat], 500)[0] == report_plots.FLOOR


def test_a_log_axis_only_where_the_values_span_more_than_two_decades():
    frame = lambda lo, hi: pd.DataFrame({"min": [lo], "max": [hi]})  # noqa: E731
    assert report_plots.wants_log([frame(1e-3, 0.7)]) and not report_plots.wants_log([frame(0.01, 0.7)])
    assert not report_plots.wants_log([frame(0.0, 0.7)])  # zero has no logarithm


def content(md):
    return [line for line in md.splitlines() if line.strip() and not SEPARATOR.fullmatch(line)]


def test_no_line_of_the_report_is_repeated(built):
    lines = content(built["md"])
    assert len(lines) > 20
    repeated = {line for line in lines if lines.count(line) > 1}
    assert not repeated, repeated


def test_the_bench_wall_time_is_stated_once(built):
    md = built["md"]
    wall = built["parents"]["metrics.wall_s"].sum()
    assert md.count("wall time") == 1 and md.count(f"took {round(wall)} s of wall time") == 1


def test_counts_are_written_with_the_right_plural(built):
    md = built["md"]
    assert "5 runs of 2 experiments" in md
    assert "150 epochs of batch 4, float64, 1 thread." in md and "12 epochs of batch 1" in md
    assert "(s)" not in md.replace(" (s)", "") and not re.search(r"\b1 (runs|seeds|threads|epochs)\b", md)
    assert "| addition_linear | scratch | 1 | rounded_accuracy |" in md  # the seeds column of the test table


def test_every_table_says_which_window_it_measures(built):
    lines = built["md"].splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith("| ") and i + 1 < len(lines)
             and SEPARATOR.fullmatch(lines[i + 1])]
    assert len(heads) == 4
    for i in heads:
        caption = next(line for line in reversed(lines[:i]) if line.strip())
        assert re.search(r"window: \*\*(training|evaluation)\*\*", caption, re.I), caption


def test_every_table_figure_is_the_one_format_of_the_summary(built):
    md, summary = built["md"], built["report"].summary
    for _, row in summary.iterrows():
        for key in ("train_time_s", "samples_per_s", "cpu_s", "rss_train_mb", "test_metric"):
            assert figure(row[f"{key}_mean"], row[f"{key}_std"]) in md, (row["experiment"], row["engine"], key)
    time_row = next(line for line in md.splitlines() if line.startswith("| xor | scratch | ") and "±" in line)
    cells = [c.strip() for c in time_row.strip("|").split("|")][2:]
    assert all(re.fullmatch(r"\(?-?[\d,.]+( ± [\d,.]+)?\)?(e[-+]\d\d)?|—", c) for c in cells), cells


def test_the_curves_have_one_band_per_engine_and_scratch_on_top(built):
    import matplotlib.collections

    runs = built["children"].assign(engine=built["children"]["params.engine"],
                                    seed=built["children"]["params.seed"].astype(int))
    xor = runs[runs["params.training.epochs"] == "150"]
    fig = report_plots.curves_figure(*report_plots.curve_bands(xor), "xor", 150)
    loss, accuracy = fig.axes
    for ax in (loss, accuracy):
        bands = [c for c in ax.collections if isinstance(c, matplotlib.collections.PolyCollection)]
        assert sorted(b.get_label() for b in bands) == ["scratch: lowest to highest seed",
                                                        "torch: lowest to highest seed"]
        lines = {line.get_label().split(":")[0]: line for line in ax.get_lines()}
        assert set(lines) == {"scratch", "torch"}
        assert lines["scratch"].get_zorder() > lines["torch"].get_zorder() > max(b.get_zorder() for b in bands)
        assert lines["scratch"].get_linestyle() != lines["torch"].get_linestyle()
        assert lines["scratch"].get_color() != lines["torch"].get_color()
    assert loss.get_yscale() == "log" and accuracy.get_yscale() == "linear"
    assert loss.get_xlim()[1] < 150  # XOR's loss has settled long before its last epoch


def test_the_resource_plot_draws_the_training_window_on_linear_axes(built):
    summary = built["report"].summary
    fig = report_plots.resources_figure(summary)
    keys = [k for k, _ in report_plots.RESOURCES]
    assert keys == ["cpu_s", "cpu_percent_mean", "rss_train_mb"]  # not rss_peak_mb: that holds the imports
    assert all(ax.get_xscale() == "linear" and ax.get_yscale() == "linear" for ax in fig.axes)
    experiments = list(dict.fromkeys(summary["experiment"]))
    grid = np.array(fig.axes).reshape(len(experiments), len(keys))
    for i, experiment in enumerate(experiments):
        rows = summary[summary["experiment"] == experiment]
        for j, key in enumerate(keys):
            widths = [p.get_width() for p in grid[i][j].patches]
            assert widths == pytest.approx(rows[f"{key}_mean"].tolist(), rel=1e-12), (experiment, key)


def test_a_store_without_epoch_times_shows_the_parent_run_s_speedup_as_logged():
    from harness.report.markdown import _speedup_cells

    no_runs = pd.DataFrame(columns=["run_id", "engine", "seed"])
    parent = pd.Series({"metrics.speedup": 1.5, "metrics.speedup_ci_low": 1.4, "metrics.speedup_ci_high": 1.6,
                        "metrics.speedup_min": 1.3, "metrics.speedup_max": 1.7})
    assert _speedup_cells(parent, no_runs) == ["1.50x [1.40–1.60] (1.30–1.70)", "scratch faster"]
    parent["metrics.speedup_ci_low"] = 0.99
    assert _speedup_cells(parent, no_runs) == ["~1.50x [0.99–1.60] (1.30–1.70)", "~ no significant difference"]
    older = pd.Series({"metrics.speedup": 1.5})  # from before the interval was logged
    assert _speedup_cells(older, no_runs) == ["1.500", "—"]


def test_time_to_target_gets_its_olympic_mean_from_five_seeds():
    from harness.report.markdown import _time_table

    def runs(experiment, times):
        return pd.DataFrame({"experiment": experiment, "engine": "scratch", "status": "FINISHED",
                             "params.evaluation.metric": "accuracy", "metrics.time_to_target_s": times,
                             "metrics.train_time_s": 1.0})

    children = pd.concat([runs("five", [1.0, 2.0, 3.0, 4.0, 50.0]), runs("three", [1.0, 2.0, 3.0])])
    summary = report.summarise(children)
    five, three = (summary[summary["experiment"] == e].iloc[0] for e in ("five", "three"))
    assert five["time_to_target_s_olympic"] == pytest.approx(3.0) and np.isnan(three["time_to_target_s_olympic"])
    lines = {line.split("|")[1].strip(): line for line in _time_table(summary) if line.startswith("| ")}
    assert "(olympic 3.000)" in lines["five"] and "olympic" not in lines["three"]
