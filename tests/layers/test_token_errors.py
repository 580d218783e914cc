"""What a user gets wrong with the token kinds is one line: ids outside the vocabulary (where the data
enters and in either engine), a sequence longer than positional's max_len, tokens of no image, an
embedding that does not read the network's input."""

import numpy as np
import pytest

from harness import spec
from harness.errors import DataError, ModelFileError, SpecError
from harness.onnx.runtime import predict_onnx
from harness.run.prepare import prepare
from tests.parity import both_engines


def network(input_shape, layers, outputs=2):
    return spec.from_dict({"data": {"dataset": "xor"},
                           "network": {"input_shape": input_shape, "layers": layers, "outputs": outputs},
                           "training": {"loss": "mse", "dtype": "float64"}})


EMBED = {"type": "embedding", "vocab": 5, "dim": 3}


@pytest.mark.parametrize(("input_shape", "layers", "words"), [
    ([9, 2], [{"type": "positional", "max_len": 8}],
     "layers.0 (positional) on input [9, 2]: a sequence of 9 steps is longer than positional's max_len = 8; "
     "raise max_len to at least 9"),
    ([6, 2], [{"type": "tokens"}],
     "layers.0 (tokens) on input [6, 2]: tokens takes an image [channels, height, width], but its input has "
     "shape [6, 2]; put a conv2d before it"),
    ([6, 2], [EMBED], "layers.0 (embedding) on input [6, 2]: embedding takes a sequence of token ids [time], but "
                      "its input has shape [6, 2]; give the network input_shape = [time]"),
    ([6], [EMBED, {"type": "linear", "units": 3}, EMBED],
     "layers.2 (embedding): embedding reads token ids, the network's input: it must be the first layer (or take "
     "from = \"input\")"),
    ([6, 2], [{"type": "seqpool", "mode": "max"}], "layers.0.mode = 'max': allowed: mean, first, last"),
])
def test_a_network_the_kinds_cannot_take_is_one_line(input_shape, layers, words):
    with pytest.raises(SpecError) as e:
        network(input_shape, layers)
    assert str(e.value) == f"spec: network.{words}"


@pytest.mark.parametrize(("bad", "words"), [
    (7.0, "token id 7.0 (sample 1, step 2) is not an integer from 0 to 4: the embedding has vocab = 5"),
    (-1.0, "token id -1.0 (sample 1, step 2) is not an integer from 0 to 4"),
    (1.5, "token id 1.5 (sample 1, step 2) is not an integer from 0 to 4"),
    (np.nan, "token id nan (sample 1, step 2) is not an integer from 0 to 4"),
])
def test_an_id_outside_the_vocabulary_is_a_data_error_in_either_engine(bad, words):
    s = network([4], [EMBED])
    x = np.zeros((3, 4))
    x[1, 2] = bad
    for engine in both_engines(s, 0):
        with pytest.raises(DataError) as e:
            engine.predict(x)
        assert str(e.value).startswith(words), engine


def test_ids_outside_the_vocabulary_are_refused_where_the_data_enters():
    s = spec.from_dict({"data": {"dataset": "sort", "length": 4, "vocab": 10, "train_size": 50, "test_size": 5},
                        "network": {"input_shape": [4], "layers": [EMBED], "outputs": 10,
                                    "output_activation": "softmax"},
                        "training": {"loss": "cross_entropy"}})
    with pytest.raises(DataError, match=r"^dataset 'sort': x_train: token id \d\.0 \(sample \d+, step \d\) is not an "
                                        r"integer from 0 to 4: the embedding has vocab = 5$"):
        prepare(s, 0)


def test_a_sequence_longer_than_max_len_is_a_data_error_in_either_engine():
    s = network([0, 2], [{"type": "linear", "units": 3}, {"type": "positional", "max_len": 4}])
    for engine in both_engines(s, 0):
        assert engine.predict(np.ones((2, 4, 2))).shape == (2, 4, 2)  # any length up to max_len
        with pytest.raises(DataError, match="^a sequence of 5 steps is longer than positional's max_len = 4"):
            engine.predict(np.ones((2, 5, 2)))


def test_onnxruntime_is_given_integer_ids_or_one_line(tmp_path):
    scratch, _ = both_engines(network([4], [EMBED]), 0)
    path = scratch.export_onnx(tmp_path / "ids.onnx")
    x = np.array([[0, 1, 2, 4], [3, 3, 0, 1]], dtype=np.float64)
    np.testing.assert_allclose(predict_onnx(path, x), scratch.predict(x), atol=1e-12)
    with pytest.raises(ModelFileError, match="^the model takes integer token ids, the data holds other numbers"):
        predict_onnx(path, x + 0.5)
