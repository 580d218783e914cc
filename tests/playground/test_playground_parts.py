"""The playground's parts without its server: a lab whose engines diverge one by one, the epochs per
second a session reaches, and where a save points (the store's absolute path, the UI's link)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from harness.playground import settings as page_settings
from harness.playground.lockstep import Lab
from harness.playground.saving import Saver, absolute_uri, ui_link, ui_urls
from harness.playground.session import EpochRate
from harness.run.runner import TrainingDiverged

DIVERGING = {"dataset": "plane", "output_activation": "identity", "loss": "mse", "optimizer": "sgd",
             "learning_rate": 3.0}


def lab_of(**settings) -> Lab:
    spec, _ = page_settings.validate(settings)
    return Lab(spec)


# ---------------------------------------------------------------------------- divergence, engine by engine


def test_both_engines_diverging_keep_their_last_good_state_and_are_not_compared():
    lab = lab_of(**DIVERGING)
    before = lab.frame()
    with pytest.raises(TrainingDiverged):
        for _ in range(5):
            lab.step()
    assert lab.error == "training loss became nan at epoch 1 on both engines; lower the learning rate"
    frame = lab.frame()
    for name in ("scratch", "torch"):
        shown = frame["engines"][name]
        assert shown["diverged"] == {"epoch": 1, "loss": "nan"} and shown["epoch"] == 0
        assert shown["grid"] == before["engines"][name]["grid"]  # the boundary of epoch 0, not a grey plane
    assert frame["compare"] == {"max_param_diff": None, "worst_param": None, "agreement_test": None,
                                "agreement_grid": None, "epoch": None}  # no "same decision on 0.0%"


def test_an_engine_diverging_alone_stops_the_lab_and_the_other_shows_its_own_epoch(monkeypatch):
    lab = lab_of(dataset="gaussians")
    lab.step()
    torch = lab.engines["torch"]
    monkeypatch.setattr(torch, "train_epoch", lambda *a: float("inf"))
    with pytest.raises(TrainingDiverged):
        lab.step()
    assert lab.error == ("training loss diverged: on torch it became inf at epoch 2 (scratch stayed finite); "
                         "lower the learning rate")
    assert lab.epoch == 1 and len(lab.history) == 1  # the last epoch both finished
    frame = lab.frame()
    s, t = frame["engines"]["scratch"], frame["engines"]["torch"]
    assert (s["epoch"], s["diverged"]) == (2, None) and s["test_metric"] is not None
    assert t["epoch"] == 1 and t["diverged"] == {"epoch": 2, "loss": "inf"}
    assert t["test_loss"] == lab.history[0].test_loss["torch"]
    assert frame["compare"]["epoch"] is None and frame["compare"]["agreement_test"] is None  # two epochs: not compared


def test_the_frame_holds_every_layers_weights_for_the_diagram():
    lab = lab_of(hidden=[3, 2], features=["x1", "x2", "x1^2"])
    lab.step()
    weights = lab.frame()["weights"]
    assert [np.shape(w) for w in weights] == [(3, 3), (2, 3), (1, 2)]  # torch's layout: (out, in)
    params = lab.engines["scratch"].parameters()
    assert np.allclose(weights[1], params["layers.1.weight"], atol=5e-5)


# ---------------------------------------------------------------------------- speed


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_epoch_rate_counts_epochs_over_the_time_they_span():
    clock = Clock()
    rate = EpochRate(window=2.0, least=0.5, clock=clock)
    rate.tick()
    assert rate.value() is None
    for _ in range(4):  # 4 epochs 0.1 s apart: 0.4 s, not yet enough to say
        clock.now += 0.1
        rate.tick()
    assert rate.value() is None
    for _ in range(16):
        clock.now += 0.1
        rate.tick()
    assert rate.value() == pytest.approx(10.0)
    for _ in range(40):  # slower now: after the window, the old pace is forgotten
        clock.now += 0.25
        rate.tick()
    assert rate.value() == pytest.approx(4.0)
    rate.clear()
    assert rate.value() is None


# ---------------------------------------------------------------------------- where a save points


def test_a_sqlite_store_is_named_by_its_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_uri("sqlite:///mlflow.db") == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert absolute_uri("sqlite:///sub/m.db?timeout=5") == f"sqlite:///{tmp_path / 'sub' / 'm.db'}?timeout=5"
    assert absolute_uri("postgresql://u@h/db") == "postgresql://u@h/db"
    assert Saver("sqlite:///mlflow.db").uri == f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_the_ui_is_looked_for_on_the_tracking_server_first_and_never_with_a_password():
    assert ui_urls("http://h:5000/", ["http://127.0.0.1:5000"]) == ("http://h:5000", "http://127.0.0.1:5000")
    assert ui_urls("http://u:pw@h:5000", ["http://127.0.0.1:5000"]) == ("http://127.0.0.1:5000",)
    assert ui_urls("sqlite:////x/m.db", ["http://127.0.0.1:5000/"]) == ("http://127.0.0.1:5000",)


@pytest.fixture
def fake_ui():
    """An HTTP server answering MLflow's runs/get for the runs in `runs` (run id -> experiment id), 404 else."""
    runs: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802  http.server's name
            url = urlparse(self.path)
            run_id = parse_qs(url.query).get("run_id", [""])[0]
            if url.path != "/api/2.0/mlflow/runs/get" or run_id not in runs:
                self.send_response(404)
                self.end_headers()
                return
            body = json.dumps({"run": {"info": {"run_id": run_id, "experiment_id": runs[run_id]}, "data": {}}})
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", runs
    server.shutdown()
    server.server_close()


def test_a_run_is_linked_only_in_a_ui_that_serves_it(fake_ui):
    url, runs = fake_ui
    runs["a1b2"] = "7"
    nobody = "http://127.0.0.1:9"  # the discard port: nothing answers
    assert ui_link("a1b2", [nobody, url]) == f"{url}/#/experiments/7/runs/a1b2"
    assert ui_link("ffff", [url]) is None  # a UI on another store
    assert ui_link("a1b2", [nobody]) is None
    assert ui_link("a1b2", [f"{url}/not-mlflow"]) is None


def test_a_session_says_when_it_plays_below_the_chosen_pace(monkeypatch):
    from harness.playground.session import Session

    spec, raw = page_settings.validate({})
    session = Session("s", Lab(spec), {}, raw)
    try:
        assert session.state()["epochs_per_s"] is None  # paused: no figure
        session._playing = True  # as play() leaves it, without the worker training meanwhile
        for pace, reached, below in ((60.0, 17.0, True), (60.0, 59.0, False), (0.0, 17.0, False)):
            session._pace = pace
            monkeypatch.setattr(session._rate, "value", lambda r=reached: r)
            state = session.state()
            assert (state["epochs_per_s"], state["below_pace"]) == (reached, below)
    finally:
        session._playing = False
        session.close()
        session.join(10)
