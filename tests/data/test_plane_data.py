"""The 2-D datasets of TF Playground: points, labels, features, their [data] keys and a run on each engine."""

import re

import numpy as np
import pytest

from harness import cli, spec
from harness.data import DATASETS, load, plane
from harness.errors import DataError, SpecError
from harness.run.prepare import prepare
from harness.run.runner import run
from tests.cli.test_cli import ROOT

CIRCLE = """
name = "circle"
[data]
dataset = "circle"
features = ["x1", "x2", "x1^2", "x2^2"]
[network]
inputs = 4
hidden = [{ units = 4, activation = "tanh" }]
outputs = 1
output_activation = "sigmoid"
[training]
loss = "bce"
optimizer = { name = "adam", learning_rate = 0.03 }
epochs = 30
batch_size = 10
threads = 1
"""


def circle(**data):
    raw = {"name": "c", "data": {"dataset": "circle", **data},
           "network": {"inputs": len(data.get("features", ["x1", "x2"])), "outputs": 1,
                       "hidden": [{"units": 4, "activation": "tanh"}], "output_activation": "sigmoid"},
           "training": {"loss": "bce"}}
    return spec.from_dict(raw)


@pytest.mark.parametrize("name", plane.NAMES)
def test_every_2d_dataset_gives_points_in_the_plane_and_one_target_each(name):
    x, y = plane.points(name, 301, noise=0.2, seed=5)
    assert x.shape == (301, 2) and y.shape == (301, 1) and x.dtype == y.dtype == np.float64
    assert np.isfinite(x).all() and np.isfinite(y).all()
    assert np.abs(x).max() <= plane.RANGE + 0.5 or name == "gaussians"  # the blobs have tails
    if name in plane.CLASSIFICATION:
        assert set(np.unique(y)) <= {0.0, 1.0}
    info = DATASETS[name]
    assert (info.features, info.outputs, info.metric, info.max_train_size) == (
        2, 1, "accuracy" if name in plane.CLASSIFICATION else "mae", 5000)


@pytest.mark.parametrize("name", ["circle", "gaussians", "spiral"])
def test_classes_split_evenly_and_come_mixed(name):
    _, y = plane.points(name, 501, seed=1)
    assert y.sum() == 251  # the odd point to class 1
    assert 0 < y[:20].sum() < 20  # shuffled, not in blocks


def test_xor_plane_is_labelled_by_the_sign_of_the_product_and_roughly_balanced():
    x, y = plane.points("xor_plane", 2000, seed=0)
    assert np.array_equal(y.ravel(), (x[:, 0] * x[:, 1] >= 0).astype(float))
    assert np.abs(x).min() >= 0.3  # pushed off the axes
    assert 0.45 < y.mean() < 0.55


def test_circle_without_noise_is_separated_by_radius_3():
    x, y = plane.points("circle", 1000, seed=2)
    r = np.hypot(x[:, 0], x[:, 1])
    assert np.array_equal(y.ravel(), (r < 3).astype(float))
    assert r[y.ravel() == 1].max() < 2.5 and r[y.ravel() == 0].min() >= 3.5
    _, noisy = plane.points("circle", 1000, noise=0.5, seed=2)
    assert 0 < (noisy != y).sum() < 500  # noise flips labels near the boundary


def test_the_surfaces_follow_their_formulas():
    x, y = plane.points("plane", 100, seed=3)
    np.testing.assert_allclose(y.ravel(), (x[:, 0] + x[:, 1]) / 10)
    x, y = plane.points("surface", 2000, seed=3)
    assert -1 <= y.min() < -0.5 and 0.5 < y.max() <= 1
    top = np.hypot(x[:, 0] + 4, x[:, 1] - 2.5) < 0.3  # near the +1 bump at (-4, 2.5)
    assert (y[top] > 0.8).all() and top.any()


def test_points_are_the_seed_s_and_the_same_in_every_call():
    for name in plane.NAMES:
        a, b = plane.points(name, 50, 0.1, seed=7), plane.points(name, 50, 0.1, seed=7)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        assert not np.array_equal(a[0], plane.points(name, 50, 0.1, seed=8)[0])


def test_a_run_trains_on_the_points_the_page_shows_and_tests_on_others():
    s = circle(train_size=100, test_size=60, noise=0.1)
    d = load(s.data, seed=4, dtype="float64")
    x, y = plane.points("circle", 100, 0.1, seed=4)
    assert np.array_equal(d.x_train, x) and np.array_equal(d.y_train, y)
    assert d.x_test.shape == (60, 2) and not np.isin(d.x_test[:, 0], x[:, 0]).any()
    x_train, _, x_test, _ = plane.split("circle", 100, 60, 0.1, seed=4)
    assert np.array_equal(x_train, x) and np.array_equal(x_test, d.x_test)
    assert np.array_equal(plane.split("circle", 30, 60, 0.1, seed=4)[2], x_test)  # test set kept
    again = load(s.data, seed=4, dtype="float64")
    assert again.digest == d.digest and load(s.data, seed=5, dtype="float64").digest != d.digest
    assert load(s.data, seed=4, dtype="float32").x_train.dtype == np.float32


def test_features_are_computed_from_x1_and_x2_in_the_order_named():
    x = np.array([[1.0, 2.0], [-0.5, 3.0]])
    f = plane.features(x, ["x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)", "x1"])
    np.testing.assert_allclose(f, [[2, 1, 4, 2, np.sin(1), np.sin(2), 1], [3, 0.25, 9, -1.5, np.sin(-0.5), np.sin(3),
                                                                            -0.5]])
    assert list(plane.FEATURE_LABELS) == list(plane.FEATURES) and plane.FEATURE_LABELS["x1^2"] == "X₁²"
    with pytest.raises(DataError, match=r"unknown feature 'x3'"):
        plane.features(x, ["x3"])
    s = circle(features=["x1*x2", "sin(x2)"])
    d = load(s.data, seed=0, dtype="float64")
    raw, _ = plane.points("circle", 250, seed=0)
    np.testing.assert_allclose(d.x_train, np.stack([raw[:, 0] * raw[:, 1], np.sin(raw[:, 1])], axis=1))


def test_the_keys_take_their_defaults():
    d = circle().data
    assert (d.train_size, d.test_size, d.noise, d.features) == (None, 250, 0.0, ("x1", "x2"))
    assert spec.from_dict(circle().to_dict()) == circle()
    assert len(load(d, seed=0).x_train) == 250


BAD = [
    ({"features": ["x1", "x3"]}, r"^spec: data.features.1: unknown feature 'x3'.*; known: sin\(x1\), "),
    ({"features": []}, r"^spec: data.features = \[\]: must list at least one of x1, x2, x1\^2"),
    ({"features": "x1"}, r"^spec: data.features = 'x1': must be a list"),
    ({"features": ["x1", "x1"]}, r"^spec: data.features = \['x1', 'x1'\]: must not repeat a feature"),
    ({"noise": 0.7}, r"^spec: data.noise = 0.7: must be from 0 to 0.5"),
    ({"noise": -0.1}, r"^spec: data.noise = -0.1: must be from 0 to 0.5"),
    ({"test_size": 0}, r"^spec: data.test_size = 0: must be an integer from 1 to 5,000"),
    ({"test_size": 5001}, r"^spec: data.test_size = 5001: must be an integer from 1 to 5,000"),
]


@pytest.mark.parametrize("data,pattern", BAD)
def test_a_bad_key_is_one_line_naming_it(data, pattern):
    with pytest.raises(SpecError, match=pattern) as e:
        circle(**data)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("dataset", ["xor", "mnist"])
def test_datasets_that_take_no_such_key_refuse_it(dataset):
    raw = circle().to_dict()
    raw["data"] = {"dataset": dataset, "noise": 0.1}
    with pytest.raises(SpecError, match=rf"data.noise = 0.1: dataset '{dataset}' takes no noise; only circle, "
                                        r"xor_plane, .*surface do$"):
        spec.from_dict(raw)


@pytest.mark.parametrize("dataset", ["xor", "circle"])
def test_a_folder_of_files_is_refused_where_the_dataset_reads_none(dataset):
    raw = circle().to_dict()
    raw["data"] = {"dataset": dataset, "path": "~/idx"}  # was ignored: the run drew its data as if it were absent
    with pytest.raises(SpecError, match=rf"data.path = '~/idx': dataset '{dataset}' takes no path; only mnist "
                                        r"does$"):
        spec.from_dict(raw)
    raw["data"] = {"dataset": "mnist", "path": "~/idx"}
    assert spec.from_dict(raw).data.path == "~/idx"


def test_inputs_must_equal_the_features_listed():
    raw = circle(features=["x1", "x2", "x1^2"]).to_dict()
    raw["network"]["inputs"] = 2
    with pytest.raises(SpecError, match=r"^network.inputs = 2, but data.features lists 3 features \(x1, x2, x1\^2\) "
                                        r"for dataset 'circle'; set network.inputs = 3 or change data.features$"):
        prepare(spec.from_dict(raw), seed=0)
    assert prepare(circle(features=["x1", "x2", "x1^2"]), seed=0).x_train.shape == (250, 3)


def test_a_training_set_over_5000_points_is_refused():
    with pytest.raises(DataError, match=r"data.train_size = 5001: dataset 'circle' makes at most 5,000 rows"):
        prepare(circle(train_size=5001), seed=0)


@pytest.mark.parametrize("engine", ["scratch", "torch"])
def test_harness_run_learns_the_circle_on_each_engine(engine, tmp_path, capsys):
    path = tmp_path / "circle.toml"
    path.write_text(CIRCLE)
    assert cli.main(["run", str(path), "--engine", engine]) == 0
    out = capsys.readouterr().out
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", out).group(1))
    assert accuracy >= 0.95, out


@pytest.mark.parametrize("engine", ["scratch", "torch"])
def test_the_spiral_experiment_reaches_its_target(engine):
    s = spec.load(ROOT / "experiments" / "spiral.toml")
    r = run(s, engine, 0)
    assert r.final["test_accuracy"] >= 0.95 and r.target_epoch is not None
    assert r.epochs[-1].train_loss < r.epochs[0].train_loss / 10
