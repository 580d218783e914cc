"""The MLflow UI as a new user meets it after `make bench` and `make ui`, in headless Chromium.

A small bench (XOR, both engines, three seeds) fills a temporary store; `harness ui` serves it.
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
from tests.browser import free_port
from tests.cli.test_cli import ROOT

pytestmark = pytest.mark.browser
RUNS = [f"{engine} seed {seed}" for engine in ("scratch", "torch") for seed in (0, 1, 2)]


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ui")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    xor = folder / "xor.toml"
    xor.write_text((ROOT / "experiments" / "xor.toml").read_text().replace("epochs = 500", "epochs = 60"))
    bench.bench([xor], uri=uri, out=lambda *_: None)
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
    page.get_by_text("Group by", exact=True).first.click()
    page.get_by_text("engine", exact=True).first.click()
    page.keyboard.press("Escape")
    page.get_by_text("Group: scratch").wait_for()


def test_the_experiment_opens_in_the_training_view_with_every_engine_and_seed(page, ui, shots):
    training_view(page, ui)
    assert "workflowType=machine_learning" in page.url and f"/experiments/{ui['experiment']}/runs" in page.url
    assert page.get_by_role("link", name="Models", exact=True).count()  # the training view's tabs, not GenAI's
    assert not page.get_by_text("Token Usage").count()
    group_by_engine(page)
    for name in RUNS:
        assert page.get_by_role("link", name=name, exact=True).is_visible(), name
    for model in ("xor-scratch-seed0", "xor-torch-seed2"):
        assert page.get_by_role("link", name=model).is_visible(), model
    shots(page, "mlflow-runs")
    assert page.errors == []


def test_the_chart_view_shows_the_curves_first_per_engine(page, ui, shots):
    training_view(page, ui)
    group_by_engine(page)
    page.locator("label:has(input[value=CHART])").click()
    sections = page.locator("text=/^(curves|engines|experiment|onnx|resources|run|speed|test|time|scratch|torch)$/")
    sections.first.wait_for()
    assert sections.first.inner_text() == "curves"
    page.get_by_text("curves/train_loss").first.wait_for()
    page.locator("svg.main-svg").first.wait_for()  # plotly drew the charts
    shots(page, "mlflow-charts")
    page.get_by_placeholder("Search metric charts").fill("time/")  # further down: the single figures
    page.get_by_text("time/train_s", exact=True).first.wait_for()  # training time, an engine a bar
    shots(page, "mlflow-times")
    assert page.errors == []


def test_a_run_page_draws_its_curves(page, ui, shots):
    training_view(page, ui)
    group_by_engine(page)
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
    shots(page, "mlflow-models")
    assert page.errors == []


def test_comparing_a_scratch_and_a_torch_run_shows_both(page, ui, shots):
    training_view(page, ui)
    group_by_engine(page)
    for name in ("scratch seed 0", "torch seed 0"):
        row = page.locator("[role=row]").filter(has=page.get_by_role("link", name=name, exact=True))
        row.locator("input[type=checkbox]").first.check()
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url("**compare-runs**")
    for name in ("scratch seed 0", "torch seed 0"):
        page.get_by_text(name, exact=True).first.wait_for()  # the page fills in after the URL changes
    shots(page, "mlflow-compare")
    assert page.errors == []
