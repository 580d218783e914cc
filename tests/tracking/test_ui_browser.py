"""The MLflow UI as a new user meets it after `make bench` and `make ui`, in headless Chromium.

A small bench (XOR, both engines, three seeds, on a machine played quiet so that its parent run
has a speedup whatever runs beside the tests) fills a temporary store; `harness ui` serves it.
Each test walks one step of the README's walkthrough and saves the screenshot the README shows:
into docs/ when HARNESS_SCREENSHOTS names that folder (`make screenshots`), else into a
temporary folder."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from harness.run import bench
from harness.tracking import ENGINE_COLOURS
from tests.browser import free_port
from tests.cli.test_cli import ROOT
from tests.run import machines

pytestmark = pytest.mark.browser
RUNS = [f"{engine} seed {seed}" for engine in ("scratch", "torch") for seed in (0, 1, 2)]


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ui")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    xor = folder / "xor.toml"
    xor.write_text((ROOT / "experiments" / "xor.toml").read_text().replace("epochs = 500", "epochs = 60"))
    with pytest.MonkeyPatch.context() as m:  # the runs' source as `harness bench` has it: its script, "harness"
        m.setattr(sys, "argv", [str(Path(sys.executable).with_name("harness")), "bench"])
        bench.bench([xor], uri=uri, out=lambda *_: None, executor=machines.quiet())
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name("xor").experiment_id
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "harness", "ui", "--tracking-uri", uri, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        assert lines[1].startswith("ready: ") and "Model training" in lines[2], lines
        yield {"url": f"http://127.0.0.1:{port}", "experiment": experiment}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.fixture
def shots(tmp_path):
    folder = Path(ROOT / os.environ["HARNESS_SCREENSHOTS"]) if os.environ.get("HARNESS_SCREENSHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)

    def shot(page, name):
        page.wait_for_timeout(1500)  # charts finish drawing
        page.screenshot(path=str(folder / f"{name}.png"))
    return shot


def training_view(page, ui):
    """What `harness ui` and the README tell a new user to do first: open the UI, pick "Model
    training" at the top left (the browser keeps the choice), open the experiment, close the
    assistant's side panel."""
    page.goto(f"{ui['url']}/#/experiments")
    page.get_by_role("link", name="xor", exact=True).wait_for()
    page.get_by_text("Model training", exact=True).first.click()
    page.wait_for_function("Object.values(localStorage).some(v => v.includes('machine_learning'))")
    page.get_by_role("link", name="xor", exact=True).click()
    page.wait_for_url("**/runs?**")
    close = page.get_by_label("Close")
    if close.count():
        close.first.click()


def group_by_engine(page):
    """Group by -> `engine`, the parameter (the tag is `harness.engine`)."""
    page.get_by_text("Group by", exact=True).first.click()
    page.get_by_text("engine", exact=True).first.click()
    page.keyboard.press("Escape")
    page.get_by_text("Group: scratch").wait_for()


def chart_view(page):
    page.locator("label:has(input[value=CHART])").click()
    page.get_by_test_id("experiment-view-compare-runs-section-header").first.wait_for()


def card(page, title):
    """The chart view's card of one metric, once plotly has drawn it."""
    found = page.get_by_test_id("experiment-view-compare-runs-card").filter(
        has=page.get_by_text(title, exact=True))
    found.locator("svg.main-svg").first.wait_for()
    return found


def rgb(colour):
    return "rgb({}, {}, {})".format(*(int(colour[i:i + 2], 16) for i in (1, 3, 5)))


def line_colours(chart):
    """The stroke colour of each line a line chart draws in full (its min-max bands are faint)."""
    styles = [chart.locator("path.js-line").nth(i).get_attribute("style") for i in range(
        chart.locator("path.js-line").count())]
    return sorted(s.split("stroke: ")[1].split(";")[0] for s in styles if "stroke-opacity: 1;" in s)


def test_the_experiment_opens_in_the_training_view_with_every_engine_and_seed(page, ui, shots):
    """On first opening, the bench's parent run is unfolded: every run shows, without grouping."""
    training_view(page, ui)
    assert "workflowType=machine_learning" in page.url and f"/experiments/{ui['experiment']}/runs" in page.url
    assert page.get_by_role("link", name="Models", exact=True).count()  # the training view's tabs, not GenAI's
    assert not page.get_by_text("Token Usage").count()
    for name in RUNS:
        page.get_by_role("link", name=name, exact=True).wait_for()
    for model in ("xor-scratch-seed0", "xor-torch-seed2"):
        assert page.get_by_role("link", name=model).is_visible(), model
    shots(page, "mlflow-runs")
    assert page.errors == []


def test_the_chart_view_draws_the_engines_curves_on_first_opening(page, ui, shots):
    """#25, item 2: no "curves (0)", no need to find "Group by" first; each run in its engine's colour."""
    training_view(page, ui)
    chart_view(page)
    sections = page.get_by_test_id("experiment-view-compare-runs-section-header")
    assert sections.first.inner_text().split() == ["curves", "(5)", "Add", "chart"]
    loss = card(page, "curves/train_loss")
    assert line_colours(loss) == sorted([rgb(ENGINE_COLOURS["scratch"])] * 3 + [rgb(ENGINE_COLOURS["torch"])] * 3)
    shots(page, "mlflow-charts")
    assert page.errors == []


def test_grouped_by_engine_each_final_figure_is_a_bar_per_engine_and_the_parent_a_group_of_its_own(page, ui, shots):
    """#25, item 2: test accuracy as one bar per engine; the parent run's comparison is the group
    "comparison", never "Unassigned" (which was drawn in an engine's colour)."""
    training_view(page, ui)
    group_by_engine(page)
    page.get_by_text("Group: comparison", exact=True).wait_for()
    assert not page.get_by_text("Unassigned").count()
    chart_view(page)
    loss = card(page, "curves/train_loss")
    assert len(line_colours(loss)) == 2  # each engine's mean over its seeds (its band faint)
    shots(page, "mlflow-grouped")
    page.get_by_placeholder("Search metric charts").fill("test/")
    accuracy = card(page, "test/accuracy")
    assert accuracy.locator(".barlayer .point").count() == 2
    assert sorted(accuracy.locator("text=/^(scratch|torch|comparison)$/").all_inner_texts()) == ["scratch", "torch"]
    shots(page, "mlflow-tests")
    page.get_by_placeholder("Search metric charts").fill("time/")  # which engine is faster: an engine a bar
    assert card(page, "time/train_s").locator(".barlayer .point").count() == 2
    shots(page, "mlflow-times")
    page.get_by_placeholder("Search metric charts").fill("engines/scratch_speedup")  # the parent's, its own group
    speedup = card(page, "engines/scratch_speedup")
    assert speedup.locator(".barlayer .point").count() == 1
    assert speedup.locator("text=/^(scratch|torch|comparison)$/").all_inner_texts() == ["comparison"]
    assert not page.get_by_text("Unassigned").count()
    assert page.errors == []


def test_a_run_page_draws_its_curves(page, ui, shots):
    training_view(page, ui)
    page.get_by_role("link", name="scratch seed 0", exact=True).click()
    page.get_by_text("Model metrics", exact=True).first.click()
    page.get_by_text("curves/train_loss").first.wait_for()
    page.locator("svg.main-svg").first.wait_for()
    shots(page, "mlflow-run-metrics")
    assert page.errors == []


def test_the_models_tab_lists_named_models_with_their_test_metrics(page, ui, shots):
    training_view(page, ui)
    page.get_by_role("link", name="Models", exact=True).click()
    page.get_by_text("xor-scratch-seed0").first.wait_for()
    for name in RUNS:
        engine, _, seed = name.split()
        assert page.get_by_text(f"xor-{engine}-seed{seed}", exact=True).count(), name
    assert page.get_by_text("test/accuracy").count() and page.get_by_text("xor-test", exact=False).count()
    assert page.get_by_text("harness", exact=True).count() == len(RUNS)  # logged from `harness bench`
    shots(page, "mlflow-models")
    assert page.errors == []


def test_comparing_a_scratch_and_a_torch_run_shows_both(page, ui, shots):
    training_view(page, ui)
    for name in ("scratch seed 0", "torch seed 0"):
        row = page.locator("[role=row]").filter(has=page.get_by_role("link", name=name, exact=True))
        row.locator("input[type=checkbox]").first.check()
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url("**compare-runs**")
    for name in ("scratch seed 0", "torch seed 0"):
        page.get_by_text(name, exact=True).first.wait_for()  # the page fills in after the URL changes
    shots(page, "mlflow-compare")
    assert page.errors == []
