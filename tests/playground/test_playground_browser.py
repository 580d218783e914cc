"""harness playground in headless Chromium: a learner's session from the first page to the saved runs.

The issue's scenario: load the page, build a 2-4-1 network on xor, play until both engines
classify every test point, see both boundary canvases drawn, save to MLflow and find the runs
in the store; the exported file is the session's. The README's screenshots come from here:
with HARNESS_SCREENSHOTS=docs (`make screenshots`) they are written to docs/, else to tmp_path.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness import spec as specs
from harness.data import plane
from tests.playground.conftest import WAIT_MS, pause, screenshot_dir

pytestmark = pytest.mark.browser

CANVAS_COLOURS = """(id) => {
  const c = document.getElementById(id), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let blue = 0, orange = 0, drawn = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 0) drawn++;
    if (d[i + 2] > 150 && d[i] < 100) blue++;
    if (d[i] > 200 && d[i + 2] < 120) orange++;
  }
  return {drawn, blue, orange, total: d.length / 4};
}"""


def test_a_learner_builds_2_4_1_on_xor_plays_to_full_accuracy_and_saves(playground, page, tmp_path):
    from mlflow.tracking import MlflowClient

    shots = screenshot_dir(tmp_path)
    page.goto(playground["url"])
    page.wait_for_selector("#play:enabled", timeout=WAIT_MS)

    # build 2-4-1 on xor: no hidden layer, then one of four units
    page.click("#dataset-xor_plane")
    while page.is_enabled("#remove-layer"):
        page.click("#remove-layer")
    assert page.text_content("#layer-count") == "0 hidden layers"
    page.click("#add-layer")
    assert page.text_content("#layer-count") == "1 hidden layer"
    assert page.locator("#layer-0 canvas").count() == 4
    assert page.locator("#features input:checked").count() == 2  # x1, x2: two inputs
    page.wait_for_function("document.querySelectorAll('#layers canvas').length === 4 && "
                           "document.getElementById('epoch').textContent === '0'", timeout=WAIT_MS)

    page.click("#play")
    page.wait_for_function("['scratch', 'torch'].every(e => "
                           "document.getElementById(e + '-test_metric').textContent === '100.0%')", timeout=WAIT_MS)
    pause(page)
    epoch = int(page.inner_text("#epoch").replace(",", ""))
    assert epoch >= 1

    for engine in ("scratch", "torch"):
        boundary = page.evaluate(CANVAS_COLOURS, f"boundary-{engine}")
        assert boundary["drawn"] == boundary["total"]  # the heat map covers the canvas
        assert boundary["blue"] > boundary["total"] / 10 and boundary["orange"] > boundary["total"] / 10
        assert page.evaluate(CANVAS_COLOURS, f"curve-{engine}")["drawn"] > 100  # the loss curves
        assert page.inner_text(f"#{engine}-steps_per_s") not in ("", "\u2013")
    assert page.inner_text("#agreement_test") == "100.0%"
    thumbs = [page.evaluate(CANVAS_COLOURS.replace("getElementById(id)", "querySelectorAll('#layer-0 canvas')[id]"), i)
              for i in range(4)]
    assert all(t["drawn"] == t["total"] for t in thumbs)
    page.screenshot(path=str(shots / "playground.png"), full_page=True)

    # the page says what is wrong with a bad setting, and the session keeps its last good one
    page.fill("#batch_size", "1000")
    page.press("#batch_size", "Tab")
    page.wait_for_selector("#error:not([hidden])", timeout=WAIT_MS)
    assert page.inner_text("#error").startswith("Batch size: 1000 is larger than the 250 training samples")
    assert page.locator("label.refused #batch_size").count() == 1  # the control is outlined
    assert int(page.inner_text("#epoch").replace(",", "")) == epoch
    page.fill("#batch_size", "10")
    page.press("#batch_size", "Tab")
    page.wait_for_selector("#error[hidden]", state="attached", timeout=WAIT_MS)
    page.wait_for_function("document.getElementById('epoch').textContent === '0'", timeout=WAIT_MS)
    page.click("#play")
    page.wait_for_function("['scratch', 'torch'].every(e => "
                           "document.getElementById(e + '-test_metric').textContent === '100.0%')", timeout=WAIT_MS)
    pause(page)
    epoch = int(page.inner_text("#epoch").replace(",", ""))

    with page.expect_download(timeout=WAIT_MS) as download:
        page.click("#export")
    exported = tmp_path / download.value.suggested_filename
    download.value.save_as(exported)
    spec = specs.load(exported)
    assert (spec.data.dataset, spec.network.describe(), spec.training.epochs) == (
        "xor_plane", "2 -> 4 relu -> 1 sigmoid", epoch)

    page.click("#save")
    page.wait_for_function("document.getElementById('save-status').textContent.startsWith('Saved to') || "
                           "document.getElementById('save-status').textContent.startsWith('Not saved')",
                           timeout=WAIT_MS)
    status = page.inner_text("#save-status")
    assert status.startswith(f"Saved to sqlite:///{tmp_path / 'mlflow.db'}: ") and "the same as on the page" in status
    assert page.inner_text("#ui-link").startswith("No MLflow UI serving this store answered at http://127.0.0.1:5000")
    page.screenshot(path=str(shots / "playground-saved.png"), full_page=True)

    client = MlflowClient(playground["uri"])
    experiment = client.get_experiment_by_name("playground-xor_plane")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and parents[0].info.run_id in status
    assert sorted(r.info.run_name for r in children) == ["scratch seed 0", "torch seed 0"]
    for run in children:
        assert run.info.status == "FINISHED"
        accuracy = [v for k, v in run.data.metrics.items() if k in ("test/accuracy", "test_accuracy")]
        assert accuracy == [1.0]
    assert page.errors == []


def set_layers(page, hidden: list[int]) -> None:
    """The hidden layers as the +/- buttons make them."""
    while page.is_enabled("#remove-layer"):
        page.click("#remove-layer")
    for k, units in enumerate(hidden):
        page.click("#add-layer")
        for _ in range(units - 4):  # a new layer has 4 units
            page.locator(f"#layer-{k} .units button").nth(1).click()
    assert page.locator("#layers canvas").count() == sum(hidden)


def test_every_dataset_learns_on_both_engines_in_the_page(playground, page, tmp_path):
    """Each 2-D set, played with a network that fits it: both engines well past chance (classes) or
    well below the error of a constant (surfaces)."""
    page.goto(playground["url"])
    page.wait_for_selector("#play:enabled", timeout=WAIT_MS)
    page.select_option("#pace", "0")
    for name, features, hidden, epochs in (("circle", [], [4], 60), ("gaussians", [], [4], 60),
                                           ("spiral", ["sin(x1)", "sin(x2)"], [8, 8], 100),
                                           ("plane", [], [4], 60), ("surface", [], [16, 16, 16], 250)):
        page.click(f"#dataset-{name}")
        for feature in features:
            page.click(f'[data-feature="{feature}"] input')
        set_layers(page, hidden)
        if name == "surface":  # six bumps: tanh units fit them steadily, ReLU ones with spikes under Adam
            page.select_option("#activation", "tanh")
        page.wait_for_function("document.getElementById('epoch').textContent === '0'", timeout=WAIT_MS)
        page.click("#play")
        page.wait_for_function(f"parseInt(document.getElementById('epoch').textContent.replace(/,/g, '')) >= {epochs}",
                               timeout=WAIT_MS)
        pause(page)
        if name == "spiral":
            page.screenshot(path=str(screenshot_dir(tmp_path) / "playground-spiral.png"), full_page=True)
        for engine in ("scratch", "torch"):
            shown = page.inner_text(f"#{engine}-test_metric")
            if name in ("plane", "surface"):  # test MAE, against predicting the median of the targets
                _, y, _, y_test = plane.split(name)
                assert float(shown) < 0.8 * float(np.abs(y_test - np.median(y)).mean()), (name, engine, shown)
            else:
                assert float(shown.rstrip("%")) > 90, (name, engine, shown)
        for feature in features:  # as they were
            page.click(f'[data-feature="{feature}"] input')

    # a diverged lab: its figures are null, the page shows why (it threw before), a reset clears it
    page.click("#dataset-plane")
    set_layers(page, [4])
    page.select_option("#optimizer", "sgd")
    page.select_option("#learning_rate", "1")
    page.wait_for_function("document.getElementById('epoch').textContent === '0'", timeout=WAIT_MS)
    page.click("#play")
    page.wait_for_selector("#error:not([hidden])", timeout=WAIT_MS)
    error = page.inner_text("#error")  # tanh still, from the surface: it diverges within a few epochs
    assert error.startswith("training loss became nan at epoch ") and error.endswith("; lower the learning rate")
    assert page.inner_text("#max_param_diff") == "\u2013"
    page.click("#reset")
    page.wait_for_selector("#error[hidden]", state="attached", timeout=WAIT_MS)
    assert page.errors == []


def test_settings_reach_the_server_in_order_and_a_save_is_sent_once(playground, page):
    """The page's two guards, held to account by holding its requests: a PUT waits for the one before it
    (else a slow reply to old settings would land after new ones), and a save in flight disables the
    button and ignores another call."""
    import requests

    held, puts, saves = [], [], []

    def on_settings(route):  # PUT /api/sessions/{id}: the first is held until the test lets it go
        if route.request.method == "PUT":
            puts.append(route.request.post_data_json)
            if len(puts) == 1:
                held.append(route)
                return
        route.continue_()

    def on_save(route):
        if route.request.method == "POST":
            saves.append(route)
            return
        route.continue_()

    def until(condition, what: str) -> None:
        for _ in range(WAIT_MS // 50):
            if condition():
                return
            page.wait_for_timeout(50)
        raise AssertionError(f"never: {what}")

    page.route("**/api/sessions/*", on_settings)
    page.route("**/api/sessions/*/save", on_save)
    page.goto(playground["url"])
    page.wait_for_selector("#play:enabled", timeout=WAIT_MS)
    sid, start = page.evaluate("page.id"), page.evaluate("page.settings.hidden")
    page.click("#add-layer")
    until(lambda: held, "the first PUT")
    page.click("#add-layer")
    page.locator(f"#layer-{len(start) + 1} .units button").nth(1).click()
    page.wait_for_timeout(1000)  # five times the page's 200 ms pause before it sends
    assert len(puts) == 1  # the newer settings wait for the answer to the older
    held[0].continue_()
    want = start + [4, 5]
    assert page.evaluate("page.settings.hidden") == want

    def server_settings():
        return requests.get(f"{playground['url']}api/sessions/{sid}", timeout=10).json()["settings"]["hidden"]

    until(lambda: len(puts) == 2 and server_settings() == want, f"the server holding hidden = {want}")
    assert puts[1]["hidden"] == want

    page.click("#step")
    page.wait_for_function("document.getElementById('epoch').textContent === '1'", timeout=WAIT_MS)
    page.click("#save")
    until(lambda: saves, "the save's POST")
    assert page.is_disabled("#save")
    page.evaluate("() => { save(); }")  # a second click that beat the button's disabling (not awaited)
    page.wait_for_timeout(500)
    assert len(saves) == 1
    saves[0].continue_()
    page.wait_for_function("document.getElementById('save-status').textContent.startsWith('Saved to') || "
                           "document.getElementById('save-status').textContent.startsWith('Not saved')",
                           timeout=WAIT_MS)
    assert page.inner_text("#save-status").startswith("Saved to") and page.is_enabled("#save")
    assert len(saves) == 1 and page.errors == []
