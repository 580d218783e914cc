"""The playground's page in headless Chromium: what a learner sees at any width, the settings in the address,
divergence shown engine by engine, controls where they apply, the speed reached, and the network diagram.

Every wait is for a condition (WAIT_MS guards against a hung page); no assertion is on a speed. With
HARNESS_SCREENSHOTS=docs (`make screenshots`) the README's phone and divergence screenshots land in docs/.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from tests.playground.conftest import WAIT_MS, pause, screenshot_dir

pytestmark = pytest.mark.browser

ENGINES = ("scratch", "torch")
DIVERGING = "?dataset=plane&output_activation=identity&loss=mse&optimizer=sgd&learning_rate=3&speed=0"
SHOWN = """(id) => {  // pixels of a canvas that are drawn, and those that are not the heat map's middle grey
  const c = document.getElementById(id), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let drawn = 0, coloured = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 0) drawn++;
    if (Math.abs(d[i] - 232) + Math.abs(d[i + 1] - 234) + Math.abs(d[i + 2] - 235) > 30) coloured++;
  }
  return {drawn, coloured, total: d.length / 4};
}"""


POINT_ON = """(link) => {  // a point of the link's hit area where it is the topmost element
  const hit = document.querySelector(`#links path.link-hit[data-link="${link}"]`), m = hit.getScreenCTM();
  for (let t = 0.5; t < 1; t += 0.02) {
    for (const u of [t, 1 - t]) {
      const p = hit.getPointAtLength(u * hit.getTotalLength()).matrixTransform(m);
      if (document.elementFromPoint(p.x, p.y) === hit) return [p.x, p.y];
    }
  }
  throw new Error(`no point of link ${link} is uncovered`);
}"""


def opened(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#play:enabled", timeout=WAIT_MS)


def step_once(page) -> None:
    page.click("#step")
    page.wait_for_function("document.getElementById('epoch').textContent === '1'", timeout=WAIT_MS)


def test_the_page_fits_a_phone_and_a_wide_screen(shared_playground, browser, tmp_path):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        for width, height in ((390, 844), (360, 740), (1920, 1080)):
            page.set_viewport_size({"width": width, "height": height})
            opened(page, shared_playground["url"])
            step_once(page)
            assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
            boxes = [page.locator(f"#boundary-{e}").bounding_box() for e in ENGINES]
            for box in boxes:  # both canvases within the width, side by side, at least 150 px wide
                assert box["x"] >= 0 and box["x"] + box["width"] <= width and box["width"] >= 150, (width, box)
            assert boxes[0]["y"] == boxes[1]["y"]
            for e in ENGINES:
                shown = page.evaluate(SHOWN, f"boundary-{e}")
                assert shown["drawn"] == shown["total"]
            columns = {round(page.locator(f"#{c}").bounding_box()["y"]) for c in ("data-col", "net-col", "out-col")}
            assert len(columns) == (1 if width == 1920 else 3)  # three columns on a wide screen; stacked on a phone
            if width == 390:
                page.screenshot(path=str(screenshot_dir(tmp_path) / "playground-phone.png"), full_page=True)
    finally:
        context.close()


def test_the_settings_live_in_the_address_a_reload_keeps_them_and_a_link_shares_them(shared_playground, page, browser):
    opened(page, shared_playground["url"])
    page.click("#dataset-spiral")
    page.click('[data-feature="sin(x1)"] input')
    page.click("#add-layer")
    page.select_option("#optimizer", "sgd")
    page.select_option("#momentum", "0.9")
    page.select_option("#learning_rate", "0.03")
    page.fill("#seed", "7")
    page.press("#seed", "Tab")
    page.select_option("#pace", "10")
    page.wait_for_function("new URLSearchParams(location.search).get('seed') === '7' && "
                           "new URLSearchParams(location.search).get('speed') === '10'", timeout=WAIT_MS)
    settings = page.evaluate("page.settings")
    assert (settings["dataset"], settings["features"], settings["hidden"], settings["momentum"]) == (
        "spiral", ["x1", "x2", "sin(x1)"], [4, 4], 0.9)
    query = parse_qs(urlparse(page.url).query)
    assert query["hidden"] == ["4,4"] and query["features"] == ["x1,x2,sin(x1)"] and query["optimizer"] == ["sgd"]

    page.reload()
    page.wait_for_selector("#play:enabled", timeout=WAIT_MS)
    assert page.evaluate("page.settings") == settings
    assert page.input_value("#seed") == "7" and page.input_value("#momentum") == "0.9"
    assert page.input_value("#pace") == "10" and page.locator("#layers .layer").count() == 2
    assert page.is_visible("#error") is False

    other = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()  # the link, elsewhere
    try:
        opened(other, page.url)
        assert other.evaluate("page.settings") == settings
        assert other.evaluate("page.id") != page.evaluate("page.id")  # a session of its own
    finally:
        other.context.close()


@pytest.mark.parametrize("query, message, kept", [
    ("?seed=-1&dataset=circle", "From the link: Seed: must be 0 or more (got -1)", ("seed", 0)),
    ("?learning_rate=fast&dataset=circle", 'From the link: Learning rate: "fast" is not a number',
     ("learning_rate", 0.01)),
    ("?hidden=4,x", 'From the link: Hidden layers: "4,x" is not a list of unit counts', ("hidden", [4])),
    ("?depth=3&dataset=circle", 'From the link: the link names an unknown setting "depth"', ("dataset", "circle")),
    ("?speed=5", 'From the link: Speed: "5" is not one of the speeds offered', ("dataset", "xor_plane")),
    ("?hidden=4,64&dataset=circle", "From the link: Units of hidden layer 2: 64, but this server takes at most 32",
     ("hidden", [4])),
])
def test_a_bad_value_in_a_link_is_refused_naming_its_control(shared_playground, page, query, message, kept):
    opened(page, shared_playground["url"] + query)
    error = page.inner_text("#error")
    assert error.startswith(message) and error.endswith("(the default is used instead)"), error
    key, value = kept
    assert page.evaluate("page.settings")[key] == value  # the default for the bad value, the link's for the rest
    if "dataset=circle" in query and key != "dataset":
        assert page.evaluate("page.settings.dataset") == "circle"
    assert page.errors == []


def test_divergence_is_shown_engine_by_engine_with_the_last_good_state(shared_playground, page, tmp_path):
    opened(page, shared_playground["url"] + DIVERGING)
    before = {e: page.evaluate(SHOWN, f"boundary-{e}") for e in ENGINES}
    page.click("#play")
    for e in ENGINES:
        page.wait_for_selector(f"#{e}-status:not([hidden])", timeout=WAIT_MS)
    page.wait_for_selector('#epoch[data-playing="false"]', state="attached", timeout=WAIT_MS)
    for e in ENGINES:
        assert page.inner_text(f"#{e}-status") == ("Diverged in epoch 1 (training loss became nan); showing epoch 0, "
                                                   "its last good state.")
        assert page.inner_text(f"#{e}-epoch") == "epoch 0"
        shown = page.evaluate(SHOWN, f"boundary-{e}")
        assert shown["coloured"] > shown["total"] / 2 and shown == before[e]  # epoch 0's surface, not a grey plane
    between = page.inner_text("#between")
    assert "Same decision" not in between and "0.0%" not in between
    assert "Not compared: both engines diverged (scratch in epoch 1, torch in epoch 1)" in between
    assert page.inner_text("#error").endswith("on both engines; lower the learning rate")
    page.screenshot(path=str(screenshot_dir(tmp_path) / "playground-diverged.png"), full_page=True)
    page.click("#reset")
    page.wait_for_selector("#scratch-status[hidden]", state="attached", timeout=WAIT_MS)
    assert page.is_visible("#compare-figures") and page.errors == []


def test_controls_show_only_where_they_apply(shared_playground, page):
    opened(page, shared_playground["url"])
    assert page.is_disabled("#save") and page.is_disabled("#export")  # nothing played yet
    step_once(page)
    assert page.is_enabled("#save") and page.is_enabled("#export")
    assert page.is_hidden("#momentum-box")  # adam, the default
    page.select_option("#optimizer", "sgd")
    assert page.is_visible("#momentum-box")
    page.select_option("#optimizer", "adamw")
    assert page.is_hidden("#momentum-box")
    assert page.is_visible("#units-hint")
    while page.is_enabled("#remove-layer"):
        page.click("#remove-layer")
    assert page.is_hidden("#units-hint")  # no hidden unit to hover


def test_the_speed_reached_is_shown_beside_the_chosen_one(shared_playground, page):
    opened(page, shared_playground["url"])
    assert page.inner_text("#speed-actual") == "\u2013"
    page.click("#play")
    page.wait_for_function(r"/^[\d,.]+ epochs\/s/.test(document.getElementById('speed-actual').textContent)",
                           timeout=WAIT_MS)
    pause(page)
    assert page.inner_text("#speed-actual") == "\u2013"
    page.evaluate("showSpeed({playing: true, pace: 60, epochs_per_s: 17.2, below_pace: true})")  # the server's word
    assert page.inner_text("#speed-actual") == "17 epochs/s, below the chosen 60: the machine trains no faster"
    page.evaluate("showSpeed({playing: true, pace: 60, epochs_per_s: 59.6, below_pace: false})")
    assert page.inner_text("#speed-actual") == "60 epochs/s"


def test_the_loss_axis_turns_logarithmic_past_two_decades(shared_playground, page):
    opened(page, shared_playground["url"])
    assert page.evaluate("lossAxis([30, 2, 0.5, null])")["log"] is False  # 60x
    axis = page.evaluate("lossAxis([30, 2, 0.2, null])")  # 150x
    assert axis == {"log": True, "lo": 0.2, "hi": 30}
    page.evaluate("page.curves = {epochs: 3, scratch: {train: [30, 1, 0.1], test: [31, 2, 0.2]}, torch: {train: [1], "
                  "test: [0.5]}}; drawCurve($('curve-scratch'), page.curves.scratch); "
                  "drawCurve($('curve-torch'), page.curves.torch)")
    assert page.get_attribute("#curve-scratch", "data-axis") == "log"
    assert page.get_attribute("#curve-torch", "data-axis") == "linear"


def test_the_diagram_draws_each_weight_and_a_hovered_unit_fills_the_numpy_panel(shared_playground, page):
    opened(page, shared_playground["url"])  # 2-4-1
    step_once(page)
    page.wait_for_function("document.querySelectorAll('#links path.link').length === 12", timeout=WAIT_MS)
    weights = page.evaluate("page.frame.weights")
    links = page.evaluate("[...document.querySelectorAll('#links path.link')].map(p => "
                          "[p.getAttribute('stroke'), Number(p.getAttribute('stroke-width'))])")
    flat = [w for layer in weights for row in layer for w in row]  # the order the links are drawn in
    assert len(flat) == 12
    for w, (stroke, width) in zip(flat, links, strict=True):
        assert stroke == ("rgb(8,119,189)" if w >= 0 else "rgb(245,147,34)")
        assert width == pytest.approx(min(6, 0.5 + 3 * abs(w)), abs=0.01)
    x, y = page.evaluate(POINT_ON, "0,2,1")  # on the link from x2 to unit 3 of layer 1, where no other crosses
    page.mouse.move(x, y)
    page.wait_for_selector("#tooltip:not([hidden])", timeout=WAIT_MS)
    w = weights[0][2][1]
    assert page.inner_text("#tooltip").startswith("weight ")
    assert "to unit 3 of hidden layer 1 (layers.0.weight[2, 1])" in page.inner_text("#tooltip")
    assert abs(float(page.inner_text("#tooltip").split()[1].rstrip(",")) - w) < 1e-3

    assert page.get_attribute("#boundary-scratch", "data-showing") == "output"
    page.hover("#layer-0 canvas >> nth=1")
    assert page.get_attribute("#boundary-scratch", "data-showing") == "unit 2 of hidden layer 1"
    assert page.get_attribute("#boundary-torch", "data-showing") == "output"
    page.hover('[data-feature="x1"] canvas')
    assert page.get_attribute("#boundary-scratch", "data-showing") == "the feature X\u2081"
    page.mouse.move(5, 5)
    assert page.get_attribute("#boundary-scratch", "data-showing") == "output"
    assert page.errors == []
