"""#25, item 6: `Network.from_onnx` on torch's legacy export (dynamo=False) of an LSTM whose forward
reshapes its input first (`v.reshape(-1, 28, 28)`): to the shape it already has, or splitting and
merging the time and feature axes into the shape the LSTM reads. Checked against torch and
onnxruntime on the same file; a Reshape that moves values between layers is refused naming it."""

import warnings

import numpy as np
import pytest

from harness.errors import ModelFileError
from harness.onnx.runtime import predict_onnx
from harness.scratch import Network


def export(tmp_path, shape, rows, dynamic, head=None):
    """A torch LSTM classifier whose forward starts with `v.reshape(*shape)` (after `head`, a layer,
    where given), exported by the legacy exporter on `rows` samples; (its file, torch's outputs on them)."""
    import torch
    from torch import nn

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = head
            self.lstm, self.fc = nn.LSTM(shape[-1], 8, batch_first=True), nn.Linear(8, 3)

        def forward(self, v):
            v = (self.head(v) if self.head is not None else v).reshape(*shape)
            return nn.functional.softmax(self.fc(self.lstm(v)[0][:, -1]), dim=1)

    torch.manual_seed(0)
    model = Model().eval()
    x = torch.randn(*rows)
    path = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False,
                          **({"input_names": ["x"], "dynamic_axes": {"x": {0: "n"}}} if dynamic else {}))
    with torch.no_grad():
        return path, x.numpy(), model(x).numpy()


@pytest.mark.parametrize("shape,rows,read", [
    ((-1, 28, 28), (5, 28, 28), "[28, 28] -> lstm 8 -> 3 softmax"),  # the shape it already has
    ((-1, 28, 28), (5, 784), "[28, 28] -> lstm 8 -> 3 softmax"),  # flat rows into 28 steps of 28
    ((-1, 14, 56), (5, 28, 28), "[14, 56] -> lstm 8 -> 3 softmax"),  # two rows a step
    ((-1, 4, 7), (5, 28), "[4, 7] -> lstm 8 -> 3 softmax"),
])
@pytest.mark.parametrize("dynamic", [False, True], ids=["fixed batch", "dynamic batch"])
def test_a_reshape_in_front_of_the_lstm_is_read_as_the_networks_input_shape(tmp_path, shape, rows, read, dynamic):
    path, x, expected = export(tmp_path, shape, rows, dynamic)
    net = Network.from_onnx(path)
    assert net.spec.describe() == read
    ours = net.predict(x.reshape(len(x), *net.spec.input_shape))
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(predict_onnx(path, x), ours, rtol=0, atol=1e-5)  # onnxruntime on the same file


def test_a_reshape_after_a_layer_that_moves_values_is_refused_naming_it(tmp_path):
    from torch import nn

    path, _, _ = export(tmp_path, (-1, 4, 7), (5, 28), dynamic=True, head=nn.Linear(28, 28))
    with pytest.raises(ModelFileError, match=r"node '/Reshape' \(op Reshape\): a Reshape of \[batch, 28\] to "
                                             r".*after a layer only a Reshape that keeps each sample's shape"):
        Network.from_onnx(path)
