"""harness playground's API: every endpoint, against a server on loopback (uvicorn in a thread).

Each test asserts an outcome: the settings refused with the experiment file's own message
under the name of the page's control,
both engines reaching full test accuracy on the default network, the exported file repeating
the session's test loss through `harness.run.runner.run`, and a save landing in the store.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import tomllib

import numpy as np
import pytest
import requests

from harness import spec as specs
from harness.errors import SpecError
from harness.playground import settings as page_settings
from harness.playground.lockstep import GRID, THUMB
from tests.browser import free_port
from tests.playground.conftest import WAIT_S


def api(server, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, server["url"] + path, timeout=WAIT_S, **kwargs)


def new_session(server, **settings) -> dict:
    r = api(server, "POST", "/api/sessions", json=settings)
    assert r.status_code == 201, r.text
    return r.json()


def until(server, sid: str, done, what: str) -> dict:
    """GET the session until `done(body)`; its body."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        body = api(server, "GET", f"/api/sessions/{sid}").json()
        if done(body):
            return body
        time.sleep(0.05)
    raise AssertionError(f"session {sid} never reached {what}: {body['state']}")


def events(server, sid: str, stop, limit: int = 2000) -> list[tuple[str, dict]]:
    """(event, data) pairs of the session's stream until `stop(event, data)` is true."""
    out = []
    with requests.get(f"{server['url']}/api/sessions/{sid}/events", stream=True, timeout=WAIT_S) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                out.append((kind, json.loads(line.removeprefix("data: "))))
                if stop(*out[-1]) or len(out) >= limit:
                    break
    return out


def decoded(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype=np.uint8)


# ---------------------------------------------------------------------------- the page and its choices


def test_page_and_assets_are_served_from_the_package_with_nothing_from_elsewhere(server):
    page = api(server, "GET", "/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert assets, "the page names its scripts and styles"
    texts = [page.text]
    for asset in assets:
        r = api(server, "GET", asset)
        assert r.status_code == 200, asset
        texts.append(r.text)
    for text in texts:  # no CDN, no font service, nothing fetched at run time
        assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", text)
        assert not re.search(r"(?:import|fetch)\s*\(\s*[\"'](?:https?:)?//", text)
    assert api(server, "GET", "/docs").status_code == 404  # FastAPI's docs page would load a CDN


def test_options_name_every_2d_dataset_the_defaults_and_the_limits(server):
    body = api(server, "GET", "/api/options").json()
    assert set(body["datasets"]) == {"circle", "xor_plane", "gaussians", "spiral", "plane", "surface"}
    assert {body["datasets"][n]["task"] for n in ("plane", "surface")} == {"regression"}
    assert body["limits"] == page_settings.LIMITS
    assert body["defaults"]["hidden"] == [4] and body["defaults"]["dataset"] == "xor_plane"
    assert "softmax" not in body["activations"] and "tanh" in body["activations"]
    assert list(body["features"])[:2] == ["x1", "x2"] and "sin(x1)" in body["features"]


# ---------------------------------------------------------------------------- refusals


def file_error(raw: dict) -> str:
    """What `harness.spec` says of the same experiment written as a file."""
    with pytest.raises(SpecError) as e:
        specs.from_dict(raw, source="x.toml")
    return str(e.value).removeprefix("x.toml: ")


@pytest.mark.parametrize("settings, control, message", [
    ({"hidden": [-3]}, "hidden", "Units of hidden layer 1: must be an integer from 1 to 1,048,576 (got -3)"),
    ({"hidden": [4] * 100}, "hidden", "Hidden layers: 100, but this server takes at most 6 hidden layers"),
    ({"hidden": [4, 33]}, "hidden", "Units of hidden layer 2: 33, but this server takes at most 32 units per layer"),
    ({"train_size": 1_000_000}, "train_size", "Training points and test points: 1,000,250 in all, but this server"),
    ({"train_size": 1500, "test_size": 600}, "train_size",
     "Training points and test points: 2,100 in all, but this server takes at most 2,000"),
    ({"activation": "swish"}, "activation", "Activation: unknown activation 'swish'"),
    ({"optimizer": "rmsprop"}, "optimizer", "Optimizer: unknown optimizer 'rmsprop'"),
    ({"init": "zeros"}, "init", "Initializer: unknown initializer 'zeros'"),
    ({"features": ["x3"]}, "features", "Features: unknown feature 'x3'"),
    ({"features": []}, "features", "Features: tick at least one of x1, x2"),
    ({"dataset": "mnist"}, "dataset", "Dataset: the playground draws the 2-D datasets only"),
    ({"dataset": "moons"}, "dataset", "Dataset: the playground draws the 2-D datasets only"),
    ({"hiden": [4]}, None, "unknown setting 'hiden' (did you mean \"hidden\"?)"),
    ({"batch_size": 251}, "batch_size", "Batch size: 251 is larger than the 250 training samples"),
    ({"learning_rate": 0}, "learning_rate", "Learning rate: must be more than 0 (got 0.0)"),
    ({"noise": 2}, "noise", "Noise: must be from 0 to 0.5"),
    ({"l2": -1}, "l2", "L2: must be 0 or more (got -1.0)"),
    ({"seed": -1}, "seed", "Seed: must be 0 or more (got -1)"),
    ({"seed": 1.5}, "seed", "Seed: must be an integer (got 1.5)"),
    ({"optimizer": "sgd", "momentum": 1}, "momentum", "Momentum: must be in [0, 1) (got 1.0)"),
    ({"output_activation": "identity"}, "output_activation",
     "Output and loss: identity + bce does not fit classification ('xor_plane'); take one of: sigmoid + bce"),
    ({"dataset": "surface"}, "output_activation",
     "Output and loss: sigmoid + bce does not fit regression ('surface'); take one of: identity + mse"),
    ({"dataset": []}, "dataset", "Dataset: must be a string (got [])"),  # these four were a TypeError, a 500
    ({"dataset": {"name": "circle"}}, "dataset", "Dataset: {'name': 'circle'}: must be a string"),
    ({"dataset": ["circle"], "output_activation": "identity", "loss": "mse"}, "dataset", "Dataset: ['circle']: must"),
    ({"dataset": 3}, "dataset", "Dataset: must be a string (got 3)"),
    ({"noise": 10**400}, "noise", "Noise: an integer past \u00b11.8e+308: too large for a number"),  # OverflowError
    ({"learning_rate": -10**400}, "learning_rate", "Learning rate: an integer past"),
    ({"l2": 10**400}, "l2", "L2: an integer past"),
    ({"optimizer": "sgd", "momentum": 10**400}, "momentum", "Momentum: an integer past"),
])
def test_bad_settings_get_a_422_naming_the_control(server, settings, control, message):
    r = api(server, "POST", "/api/sessions", json=settings)
    assert r.status_code == 422
    assert r.json()["detail"].startswith(message) and "\n" not in r.json()["detail"]
    assert r.json()["control"] == control
    if control is not None:
        assert r.json()["detail"].startswith(page_settings.CONTROLS[control]) or "hidden layer" in message


def test_a_mistake_names_the_control_not_the_experiment_files_key(server):
    """The file's own message, with the label of the control where its key was."""
    for settings, label in (({"hidden": [0]}, "Units of hidden layer 1"), ({"activation": "swish"}, "Activation"),
                            ({"learning_rate": -1}, "Learning rate"), ({"l2": -1}, "L2")):
        detail = api(server, "POST", "/api/sessions", json=settings).json()["detail"]
        key, _, rest = file_error(page_settings.experiment(page_settings.complete(settings))).partition(" = ")
        assert detail.startswith(f"{label}: ") and key not in detail
        assert rest.partition(": ")[2].replace(">= 0", "0 or more").replace("> 0", "more than 0") in detail


@pytest.mark.parametrize("body, message", [
    (b"{not json", "the body is not JSON"),
    (b"[1, 2]", "the settings must be a JSON object"),
    (b"{" + b'"a": 1, ' * 20000 + b"}", "at most 65,536"),
    (b'{"noise": 1' + b"0" * 5000 + b"}", "the body is not JSON (Exceeds the limit"),  # json's ValueError, a 500
])
def test_a_body_that_is_not_settings_is_refused(server, body, message):
    r = api(server, "POST", "/api/sessions", data=body, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500 and message in r.json()["detail"]


def test_unknown_sessions_actions_and_paces_are_refused(server):
    assert api(server, "GET", "/api/sessions/nope").status_code == 404
    assert "reload the page" in api(server, "POST", "/api/sessions/nope/step").json()["detail"]
    sid = new_session(server)["id"]
    r = api(server, "POST", f"/api/sessions/{sid}/jump")
    assert r.status_code == 404 and "known: play, pause, step, reset" in r.json()["detail"]
    for pace in (-1, 1e-300, 0.0001, 0.5, 1001, "nan", "inf"):  # 1e-300: 1 / pace overflowed and killed the worker
        r = api(server, "POST", f"/api/sessions/{sid}/play", params={"pace": pace})
        assert r.status_code == 422, pace
        assert "must be 0 (as fast as it goes) or from 1 to 1000 epochs per second" in r.json()["detail"]
    for path in ("experiment.toml", "save"):  # nothing played yet
        r = api(server, "GET" if path.endswith("toml") else "POST", f"/api/sessions/{sid}/{path}")
        assert r.status_code == 409 and "nothing played yet" in r.json()["detail"]
    assert api(server, "GET", f"/api/sessions/{sid}/save").status_code == 404
    for pace in (1, 1000):
        assert api(server, "POST", f"/api/sessions/{sid}/play", params={"pace": pace}).json()["pace"] == pace
    assert api(server, "DELETE", f"/api/sessions/{sid}").status_code == 204
    assert api(server, "GET", f"/api/sessions/{sid}").status_code == 404
    assert api(server, "DELETE", f"/api/sessions/{sid}").status_code == 404


def test_the_server_holds_a_bounded_number_of_sessions(server, monkeypatch):
    held = len(server["app"].state.store)
    monkeypatch.setitem(page_settings.LIMITS, "sessions", held + 1)
    sid = new_session(server)["id"]
    r = api(server, "POST", "/api/sessions", json={})
    assert r.status_code == 429 and f"holds {held + 1} sessions, its limit" in r.json()["detail"]
    api(server, "DELETE", f"/api/sessions/{sid}")
    assert api(server, "POST", "/api/sessions", json={}).status_code == 201


# ---------------------------------------------------------------------------- training


def test_a_new_session_holds_its_points_layout_and_first_frame(server):
    body = new_session(server, dataset="circle", features=["x1", "x2", "x1^2"], hidden=[5, 3], seed=3)
    setup, frame = body["setup"], body["frame"]
    assert body["settings"]["hidden"] == [5, 3] and body["settings"]["learning_rate"] == 0.01  # defaults filled in
    assert setup["task"] == "classification" and setup["hidden"] == [5, 3] and setup["seed"] == 3
    assert len(setup["train"]["x"]) == 2 * 250 and set(setup["train"]["y"]) == {0.0, 1.0}
    assert [f["name"] for f in setup["features"]] == ["x1", "x2", "x1^2"]
    assert all(decoded(f["thumb"]).size == THUMB * THUMB for f in setup["features"])
    assert frame["epoch"] == 0 and body["state"]["playing"] is False
    assert [len(units) for units in frame["neurons"]] == [5, 3]
    for engine in ("scratch", "torch"):
        assert decoded(frame["engines"][engine]["grid"]).size == GRID * GRID
    assert frame["compare"]["max_param_diff"] == 0.0  # the same initial weights


def test_step_trains_both_engines_one_epoch_in_lockstep(server):
    sid = new_session(server, dataset="gaussians", optimizer="adam", learning_rate=0.01)["id"]
    for _ in range(3):
        assert api(server, "POST", f"/api/sessions/{sid}/step").status_code == 200
    body = until(server, sid, lambda b: b["frame"]["epoch"] == 3, "epoch 3")
    frame = body["frame"]
    s, t = frame["engines"]["scratch"], frame["engines"]["torch"]
    assert abs(s["test_loss"] - t["test_loss"]) < 1e-12 and s["test_metric"] == t["test_metric"]
    assert 0 < frame["compare"]["max_param_diff"] < 1e-12  # float64: the engines differ by rounding only
    assert frame["compare"]["agreement_test"] == 1.0 and frame["compare"]["agreement_grid"] == 1.0
    assert s["steps_per_s"] > 0 and t["steps_per_s"] > 0
    assert body["state"]["playing"] is False


def test_play_streams_frames_until_both_engines_classify_every_test_point(server):
    sid = new_session(server)["id"]  # the default: 2-4-1 ReLU on xor_plane
    api(server, "POST", f"/api/sessions/{sid}/play", params={"pace": 0})

    def solved(kind, data):
        return kind == "frame" and data["frame"] is not None and all(
            e["test_metric"] == 1.0 for e in data["frame"]["engines"].values())

    got = events(server, sid, solved)
    api(server, "POST", f"/api/sessions/{sid}/pause")
    assert got[0][0] == "setup" and got[0][1]["hidden"] == [4]
    frames = [d for k, d in got if k == "frame"]
    assert solved("frame", frames[-1]) and frames[-1]["state"]["playing"] is True
    epochs = [e for d in frames if d["curves"] for e in d["curves"]["epochs"]]
    assert epochs == list(range(1, len(epochs) + 1))  # every epoch's point, each once
    last = frames[-1]["frame"]
    grid = decoded(last["engines"]["scratch"]["grid"])
    assert (grid < 128).any() and (grid >= 128).any()  # both classes on the plane
    assert np.array_equal(grid, decoded(last["engines"]["torch"]["grid"]))
    thumbs = [decoded(u) for u in last["neurons"][0]]
    assert len(thumbs) == 4 and all(t.size == THUMB * THUMB for t in thumbs)
    assert any(t.std() > 0 for t in thumbs)


def test_new_settings_start_a_new_lab_and_bad_ones_keep_the_old(server):
    sid = new_session(server)["id"]
    api(server, "POST", f"/api/sessions/{sid}/step")
    until(server, sid, lambda b: b["frame"]["epoch"] == 1, "epoch 1")
    r = api(server, "PUT", f"/api/sessions/{sid}", json={"hidden": [50]})
    assert r.status_code == 422 and "at most 32 units" in r.json()["detail"]
    r = api(server, "PUT", f"/api/sessions/{sid}", json={"dataset": "plane", "output_activation": "identity",
                                                          "loss": "mse", "hidden": [6, 6]})
    assert r.status_code == 200
    body = until(server, sid, lambda b: b["state"]["generation"] == 1, "generation 1")
    assert body["setup"]["task"] == "regression" and body["setup"]["hidden"] == [6, 6]
    assert body["frame"]["epoch"] == 0 and body["settings"]["dataset"] == "plane"
    lo, hi = body["setup"]["scale"]
    assert lo < 0 < hi  # a surface's colour scale is its targets' range
    api(server, "POST", f"/api/sessions/{sid}/step")
    until(server, sid, lambda b: b["frame"]["epoch"] == 1, "epoch 1 of the new lab")
    api(server, "POST", f"/api/sessions/{sid}/reset")
    body = until(server, sid, lambda b: b["state"]["generation"] == 2, "a reset")
    assert body["frame"]["epoch"] == 0 and body["settings"]["dataset"] == "plane"


def test_a_diverging_session_stops_with_the_reason(server):
    sid = new_session(server, dataset="plane", output_activation="identity", loss="mse", optimizer="sgd",
                      learning_rate=5.0)["id"]
    api(server, "POST", f"/api/sessions/{sid}/play", params={"pace": 0})
    body = until(server, sid, lambda b: b["frame"]["error"] is not None, "an error")
    assert body["frame"]["error"] == "training loss became nan at epoch 1 on both engines; lower the learning rate"
    frame = until(server, sid, lambda b: not b["state"]["playing"], "a pause")["frame"]
    assert frame["epoch"] == 0


# ---------------------------------------------------------------------------- export and save


def play_epochs(server, sid: str, epochs: int) -> dict:
    for _ in range(epochs):
        api(server, "POST", f"/api/sessions/{sid}/step")
    return until(server, sid, lambda b: b["frame"]["epoch"] == epochs, f"epoch {epochs}")


def test_the_exported_file_repeats_the_session_through_harness_run(server, tmp_path, capsys):
    """Its own "Repeat it" line, run as written: the session's seed, so the page's figures come back."""
    from harness.cli import main

    settings = {"dataset": "spiral", "noise": 0.1, "features": ["x1", "x2", "sin(x1)", "sin(x2)"], "hidden": [6, 4],
                "activation": "tanh", "init": "xavier_normal", "optimizer": "adam", "learning_rate": 0.02,
                "l2": 0.001, "batch_size": 16, "train_size": 300, "test_size": 120, "seed": 7}
    sid = new_session(server, **settings)["id"]
    frame = play_epochs(server, sid, 6)["frame"]
    r = api(server, "GET", f"/api/sessions/{sid}/experiment.toml")
    assert r.status_code == 200 and 'filename="playground-spiral.toml"' in r.headers["content-disposition"]
    path = tmp_path / "playground-spiral.toml"
    path.write_text(r.text)
    spec = specs.load(path)
    assert spec.training.epochs == 6 and spec.bench.seeds == (7,) and spec.data.features == tuple(settings["features"])
    assert spec.training.optimizer.kwargs()["weight_decay"] == 0.001
    assert tomllib.loads(r.text)["network"]["hidden"] == [{"units": 6, "activation": "tanh"},
                                                          {"units": 4, "activation": "tanh"}]
    command = re.search(r"Repeat it: harness (run \S+ .*?) \(or torch\)", r.text).group(1).split()
    assert command[:2] == ["run", "playground-spiral.toml"]
    capsys.readouterr()
    for engine in ("scratch", "torch"):
        argv = [*command[:1], str(path), *command[2:-1], engine]
        assert main(argv) == 0
        printed, page = capsys.readouterr().out, frame["engines"][engine]
        assert (f"on {engine} (seed 7, " in printed and f"test accuracy {page['test_metric']:.4f}, test loss "
                f"{page['test_loss']:.4g}" in printed and "over 6 epochs" in printed), printed


def test_save_logs_the_session_as_harness_bench_does_and_matches_the_page(server):
    from mlflow.tracking import MlflowClient

    sid = new_session(server, dataset="circle", hidden=[3])["id"]
    page = play_epochs(server, sid, 4)["frame"]["engines"]
    r = api(server, "POST", f"/api/sessions/{sid}/save")
    assert r.status_code == 202 and r.json()["epochs"] == 4
    assert api(server, "POST", f"/api/sessions/{sid}/save").status_code == 409  # one save at a time
    deadline = time.monotonic() + WAIT_S
    while (status := api(server, "GET", f"/api/sessions/{sid}/save").json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert status["state"] == "done", status
    assert status["same_as_page"] is True
    for engine in ("scratch", "torch"):
        assert status["runs"][engine]["test_loss"] == pytest.approx(page[engine]["test_loss"], abs=1e-9)
    client = MlflowClient(server["uri"])
    experiment = client.get_experiment_by_name("playground-circle")
    runs = client.search_runs([experiment.experiment_id])
    parent = [r for r in runs if r.info.run_id == status["parent_run_id"]]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == status["parent_run_id"]]
    assert len(parent) == 1 and parent[0].info.status == "FINISHED"
    assert sorted(r.info.run_name for r in children) == ["scratch seed 0", "torch seed 0"]
    assert all(r.info.status == "FINISHED" for r in children)


# ---------------------------------------------------------------------------- the review's defects (#18)


def session_object(server, sid: str):
    return server["app"].state.store.get(sid)


def test_a_slow_pace_gives_way_to_commands_and_to_closing(server):
    sid = new_session(server)["id"]
    session = session_object(server, sid)
    session.play(pace=1e-4)  # below the API's floor: 10,000 s between epochs, which the worker slept through
    until(server, sid, lambda b: b["frame"]["epoch"] >= 1, "epoch 1")
    api(server, "POST", f"/api/sessions/{sid}/reset")
    body = until(server, sid, lambda b: b["state"]["generation"] == 1, "a reset during the pace's wait")
    assert body["frame"]["epoch"] == 0 and body["state"]["playing"] is False
    session.play(pace=1e-4)
    deadline = time.monotonic() + WAIT_S
    while session.lab.epoch < 1:  # its frame may wait for the next epoch (at most 10 a second): watch the lab
        assert time.monotonic() < deadline, "the new lab never trained"
        time.sleep(0.05)
    assert api(server, "DELETE", f"/api/sessions/{sid}").status_code == 204
    session._thread.join(WAIT_S)
    assert not session._thread.is_alive()  # closed during the wait, not 10,000 s later


def test_an_unexpected_error_stops_the_session_with_the_reason_and_its_worker_lives_on(server, monkeypatch):
    sid = new_session(server)["id"]
    session = session_object(server, sid)

    def broken():
        raise RuntimeError("out of memory (a stand-in for torch's)")

    monkeypatch.setattr(session.lab, "step", broken)
    api(server, "POST", f"/api/sessions/{sid}/play", params={"pace": 0})
    body = until(server, sid, lambda b: b["frame"]["error"] is not None, "the error")
    assert body["frame"]["error"] == ("training stopped: RuntimeError: out of memory (a stand-in for torch's); "
                                      "reset or change a setting to start again")
    assert until(server, sid, lambda b: not b["state"]["playing"], "a pause")["frame"]["epoch"] == 0
    assert session._thread.is_alive()
    api(server, "POST", f"/api/sessions/{sid}/reset")  # a fresh lab, its own step: the worker still listens
    body = until(server, sid, lambda b: b["state"]["generation"] == 1, "a reset")
    assert body["frame"]["error"] is None
    api(server, "POST", f"/api/sessions/{sid}/step")
    assert until(server, sid, lambda b: b["frame"]["epoch"] == 1, "epoch 1")["frame"]["error"] is None
    api(server, "DELETE", f"/api/sessions/{sid}")


def test_the_curve_cursor_counts_the_epochs_sent_not_the_history_after(server, monkeypatch):
    import dataclasses

    sid = new_session(server)["id"]
    play_epochs(server, sid, 2)
    session = session_object(server, sid)
    lab = session.lab
    sliced = lab.curves

    def worker_appends_meanwhile(start):  # the worker appends without the lock, between the slice and the count
        out = sliced(start)
        lab.history.append(dataclasses.replace(lab.history[-1], epoch=len(lab.history) + 1))
        monkeypatch.setattr(lab, "curves", sliced)
        return out

    monkeypatch.setattr(lab, "curves", worker_appends_meanwhile)
    first, cursor = session.snapshot(-1, -1, 0)
    second, cursor = session.snapshot(first.generation, first.version, cursor)
    assert first.curves["epochs"] == [1, 2] and second.curves["epochs"] == [3] and cursor == 3  # each epoch once
    api(server, "DELETE", f"/api/sessions/{sid}")


def test_save_and_export_read_one_lab_even_when_new_settings_land_between_reads(server, monkeypatch):
    from harness.playground.lockstep import Lab
    from harness.playground.session import Session

    sid = new_session(server, dataset="circle")["id"]
    frame = play_epochs(server, sid, 2)["frame"]

    def lab_then_new_settings(self):  # a PUT or a reset lands right after any read of the session's lab
        lab = self._lab
        self._start(Lab(lab.spec), self.settings, self.raw)
        return lab

    monkeypatch.setattr(Session, "lab", property(lab_then_new_settings))
    monkeypatch.setattr("harness.run.bench.bench", lambda paths, uri, out: (_ for _ in ()).throw(SpecError("no store")))
    r = api(server, "GET", f"/api/sessions/{sid}/experiment.toml")
    assert r.status_code == 200 and tomllib.loads(r.text)["training"]["epochs"] == 2
    r = api(server, "POST", f"/api/sessions/{sid}/save")  # read the lab twice: an IndexError, a 500
    assert r.status_code == 202, r.text
    assert r.json()["epochs"] == 2 and r.json()["page"]["torch"]["test_loss"] == frame["engines"]["torch"]["test_loss"]
    saved = wait_for_save(server, sid)
    assert saved["state"] == "failed" and saved["message"] == "no store"
    api(server, "DELETE", f"/api/sessions/{sid}")


def wait_for_save(server, sid: str) -> dict:
    deadline = time.monotonic() + WAIT_S
    while (status := api(server, "GET", f"/api/sessions/{sid}/save").json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    return status


def test_a_save_runs_once_however_many_clicks_and_always_ends(server, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    sid = new_session(server)["id"]
    play_epochs(server, sid, 1)
    release = threading.Event()

    def bench_with_an_odd_outcome(paths, uri, out):  # reading its outcome fails after bench's own try
        release.wait(WAIT_S)
        return "bench-id", [object()]

    monkeypatch.setattr("harness.run.bench.bench", bench_with_an_odd_outcome)
    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(lambda _: api(server, "POST", f"/api/sessions/{sid}/save").status_code, range(8)))
    assert codes == [202] + [409] * 7
    release.set()
    status = wait_for_save(server, sid)  # stayed "running" for ever, and every later save a 409
    assert status["state"] == "failed" and status["message"].startswith("AttributeError: 'object' object has no")
    assert api(server, "POST", f"/api/sessions/{sid}/save").status_code == 202
    assert wait_for_save(server, sid)["state"] == "failed"
    api(server, "DELETE", f"/api/sessions/{sid}")


def test_the_saver_keeps_a_bounded_number_of_finished_saves(server, monkeypatch):
    from harness.playground import saving

    monkeypatch.setattr(saving, "KEEP_FINISHED", 2)
    monkeypatch.setattr("harness.run.bench.bench", lambda paths, uri, out: (_ for _ in ()).throw(SpecError("no store")))
    saver = saving.Saver(server["uri"])
    for sid in ("a", "b", "c", "d", "a"):
        saver.start(sid, "", "x", 1, {})
        deadline = time.monotonic() + WAIT_S
        while saver.latest(sid).state in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.01)
    # pruned as a save starts: the two latest finished ("c", "d") beside the new one ("a" again); "b" is gone
    assert [sid for sid in "abcd" if saver.latest(sid) is not None] == ["a", "c", "d"]


def test_creating_a_session_leaves_the_server_and_other_sessions_answering(server, monkeypatch):
    from harness.playground.lockstep import Lab

    other = new_session(server)["id"]
    entered, release = threading.Event(), threading.Event()
    setup = Lab.setup

    def slow_setup(self):
        entered.set()
        release.wait(WAIT_S)
        return setup(self)

    monkeypatch.setattr(Lab, "setup", slow_setup)
    created = []
    creating = threading.Thread(target=lambda: created.append(api(server, "POST", "/api/sessions", json={})))
    creating.start()
    try:
        assert entered.wait(WAIT_S)
        quick = {"timeout": WAIT_S / 6}  # on the event loop, or under the store's lock, these waited for the setup
        assert requests.get(server["url"] + "/api/options", **quick).status_code == 200
        assert requests.get(f"{server['url']}/api/sessions/{other}", **quick).status_code == 200
    finally:
        release.set()
        creating.join(WAIT_S)
    assert created[0].status_code == 201
    for sid in (other, created[0].json()["id"]):
        api(server, "DELETE", f"/api/sessions/{sid}")


def test_an_idle_session_is_closed_on_any_request_not_only_on_a_new_session(server, monkeypatch):
    from harness.playground import session as sessions

    idle, other = new_session(server)["id"], new_session(server)["id"]
    session = session_object(server, idle)
    monkeypatch.setattr(sessions, "REAP_S", 0.0)
    session.seen = time.monotonic() - sessions.IDLE_S - 1
    assert api(server, "GET", f"/api/sessions/{other}").status_code == 200
    assert api(server, "GET", f"/api/sessions/{idle}").status_code == 404
    session._thread.join(WAIT_S)
    assert not session._thread.is_alive()
    api(server, "DELETE", f"/api/sessions/{other}")


# ---------------------------------------------------------------------------- stopping the server


def test_closing_the_sessions_waits_for_their_workers(server):
    """A worker still inside torch when the interpreter exits aborts it ("terminate called without an
    active exception", exit -6): closing every session must leave none running."""
    from harness.playground.session import SessionStore

    store = server["app"].state.store
    own = SessionStore()
    sessions = [store.get(new_session(server, hidden=[32, 32])["id"]) for _ in range(2)]
    for s in sessions:
        with store._lock:
            own._sessions[s.id] = store._sessions.pop(s.id)  # this store only: the module's server lives on
        s.play(pace=0)
    deadline = time.monotonic() + WAIT_S
    while min(s.lab.epoch for s in sessions) < 2:
        assert time.monotonic() < deadline, "the sessions never played"
        time.sleep(0.01)
    own.close_all()
    assert [s.id for s in sessions if s._thread.is_alive()] == []


def test_the_saver_says_what_is_under_way_and_waits_for_it(server, monkeypatch):
    from harness.playground import saving

    go = threading.Event()
    monkeypatch.setattr(saving.Saver, "_bench", lambda self, job, path: go.wait(WAIT_S))
    saver = saving.Saver(server["uri"])
    job = saver.start("s", "", "x", 1, {})
    assert saver.under_way() == 1 and saver.wait(0.05) is False
    go.set()
    assert saver.wait(WAIT_S) is True and saver.under_way() == 0 and job.state == "running"  # _bench was replaced


def test_sigterm_stops_playing_sessions_finishes_the_save_under_way_and_exits_0(tmp_path):
    """`harness playground` as a user runs it: sessions playing flat out and a save just started when
    SIGTERM comes. It waits for the save, says so, and exits 0; the saved runs are FINISHED."""
    import os
    import signal
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    from tests.browser import wait_for_http

    port, uri = free_port(), f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "playground", "--port", str(port)], cwd=tmp_path,
                            env={**os.environ, "MLFLOW_TRACKING_URI": uri}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        here = {"url": f"http://127.0.0.1:{port}"}
        wait_for_http(here["url"] + "/api/options", WAIT_S, alive=lambda: proc.poll() is None)
        for _ in range(2):
            assert api(here, "POST", f"/api/sessions/{new_session(here)['id']}/play?pace=0").ok
        sid = new_session(here, dataset="circle")["id"]
        play_epochs(here, sid, 3)
        assert api(here, "POST", f"/api/sessions/{sid}/save").status_code == 202
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    lines = out.strip().splitlines()
    assert "waiting for 1 save under way to finish" in out and lines[-1] == "harness playground: stopped", out
    runs = MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name("playground-circle").experiment_id])
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}
