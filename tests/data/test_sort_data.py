"""The sort dataset: seeded sequences of token ids, their sorted targets per step, its [data] keys,
and the accuracy that counts a sequence only when every step is right."""

import numpy as np
import pytest

from harness import spec
from harness.data import DATASETS, load
from harness.errors import SpecError
from harness.metrics import get as get_metric
from harness.run.prepare import check_fits


def sort_spec(**data):
    return {"data": {"dataset": "sort", **data},
            "network": {"input_shape": [data.get("length", 8)], "outputs": data.get("vocab", 10),
                        "layers": [{"type": "embedding", "vocab": data.get("vocab", 10), "dim": 4}],
                        "output_activation": "softmax"},
            "training": {"loss": "cross_entropy"}}


def test_samples_are_seeded_token_ids_and_their_targets_the_sorted_sequences():
    s = spec.from_dict(sort_spec(length=5, vocab=7, train_size=300, test_size=40)).data
    d = load(s, seed=2, dtype="float64")
    assert d.x_train.shape == (300, 5) and d.x_test.shape == (40, 5) and d.x_train.dtype == np.float64
    assert d.y_train.dtype == np.int64 and d.y_train.shape == (300, 5)
    assert set(np.unique(d.x_train)) == set(range(7))  # uniform over the vocabulary: every id appears
    np.testing.assert_array_equal(d.y_train, np.sort(d.x_train, axis=1))
    np.testing.assert_array_equal(d.y_test, np.sort(d.x_test, axis=1))
    assert d.digest == load(s, seed=2, dtype="float64").digest
    assert d.digest != load(s, seed=3, dtype="float64").digest


def test_the_test_set_does_not_change_with_train_size():
    small = load(spec.from_dict(sort_spec(train_size=10, test_size=30)).data, seed=1)
    large = load(spec.from_dict(sort_spec(train_size=500, test_size=30)).data, seed=1)
    np.testing.assert_array_equal(small.x_test, large.x_test)
    np.testing.assert_array_equal(small.x_train, large.x_train[:10])


def test_defaults_and_the_shapes_the_keys_give_the_network():
    s = spec.from_dict(sort_spec())
    assert (s.data.length, s.data.vocab, s.data.test_size) == (8, 10, 1000)
    info = DATASETS["sort"].for_data(s.data)
    assert (info.shape, info.outputs) == ((8,), 10)
    wide = spec.from_dict(sort_spec(length=12, vocab=3))
    check_fits(wide, DATASETS["sort"])  # fits a network of 12 ids and 3 classes per step
    with pytest.raises(SpecError, match=r"network.outputs = 10, but dataset 'sort' needs 3 outputs"):
        check_fits(spec.from_dict({**sort_spec(length=12, vocab=3), "network": sort_spec(length=12)["network"]}),
                   DATASETS["sort"])


@pytest.mark.parametrize(("key", "value", "words"), [
    ("length", 0, "data.length = 0: must be an integer from 1 to 4,096"),
    ("vocab", 1, "data.vocab = 1: must be an integer from 2 to 65,536"),
    ("test_size", 0, "data.test_size = 0: must be an integer from 1 to 1,048,576"),
])
def test_its_keys_are_checked_in_one_line(key, value, words):
    with pytest.raises(SpecError) as e:
        spec.from_dict(sort_spec(**{key: value}))
    assert str(e.value) == f"spec: {words}"


def test_another_dataset_takes_no_vocab():
    with pytest.raises(SpecError, match="dataset 'xor' takes no vocab; only sort does"):
        spec.from_dict({**sort_spec(), "data": {"dataset": "xor", "vocab": 4}})


def test_accuracy_counts_a_sequence_only_when_every_step_is_right():
    y = np.array([[0, 1, 2], [2, 2, 0]])
    pred = np.eye(3)[[[0, 1, 2], [2, 1, 0]]]  # the second sequence wrong at one step of three
    accuracy = get_metric("accuracy")
    assert accuracy(pred, y) == 0.5
    assert accuracy(pred, np.eye(3)[y]) == 0.5  # one-hot targets per step, the same
    assert accuracy.agreement(pred, np.eye(3)[y]) == 0.5
