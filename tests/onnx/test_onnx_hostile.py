"""ONNX files that lie: data read from elsewhere than the model's folder, and shapes that would take the
machine's memory. Each is one `ModelFileError` line, from `Network.from_onnx` and from onnxruntime's side
(`harness evaluate`) alike, before anything large is allocated or any file outside the folder is read."""

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness.errors import ModelFileError
from harness.onnx import folding
from harness.onnx.runtime import session
from harness.scratch import Network
from harness.spec import network_from_dict


def xor_model(folder):
    """Our own export of a 2 -> 1 network: a Gemm whose weights are initializers."""
    net = Network(network_from_dict({"inputs": 2, "outputs": 1, "output_activation": "sigmoid"}), seed=0)
    return onnx.load(str(net.save(folder / "base.onnx"))), net


def external(name, values, location, offset=0):
    """A tensor of `values` whose data is said to be at `location` (the file itself is not written)."""
    t = numpy_helper.from_array(np.asarray(values), name)
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(np.asarray(values).nbytes))):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    return t


def with_nodes(model, *nodes, path):
    model.graph.node.extend(nodes)
    onnx.save(model, str(path))
    return path


def dead_constant(location):
    """A Constant node off the chain whose value is 16 bytes of external data at `location`."""
    return helper.make_node("Constant", [], ["stolen"], value=external("stolen", np.zeros(4, np.float32), location))


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """The model's folder, and a current directory (elsewhere) that holds private/key.bin."""
    models, cwd = tmp_path / "models", tmp_path / "cwd"
    models.mkdir()
    (cwd / "private").mkdir(parents=True)
    (cwd / "private" / "key.bin").write_bytes(b"secret-key-bytes")
    monkeypatch.chdir(cwd)
    return models


def test_a_constants_external_data_is_read_from_the_models_folder_not_the_current_one(elsewhere):
    model, net = xor_model(elsewhere)
    weight = net.state_dict()["layers.0.weight"]
    gemm = model.graph.node[0]
    model.graph.initializer.remove(next(t for t in model.graph.initializer if t.name == gemm.input[1]))
    (elsewhere / "w.bin").write_bytes(weight.astype(np.float32).tobytes())
    constant = helper.make_node("Constant", [], [gemm.input[1]], value=external(gemm.input[1], weight, "w.bin"))
    model.graph.node.insert(0, constant)
    onnx.save(model, str(elsewhere / "m.onnx"))
    assert np.array_equal(Network.from_onnx(elsewhere / "m.onnx").state_dict()["layers.0.weight"], weight)
    path = with_nodes(xor_model(elsewhere)[0], dead_constant("private/key.bin"), path=elsewhere / "dead.onnx")
    with pytest.raises(ModelFileError, match=r"dead.onnx: its weights are stored outside it and cannot be read "
                                             r"\(no file 'private/key.bin' beside it\)"):
        Network.from_onnx(path)


@pytest.mark.parametrize("location", ["/etc/passwd", "../cwd/private/key.bin", "a/../../cwd/private/key.bin",
                                      "./w.bin", "C:/w.bin", "\\\\server\\share"])
def test_a_location_outside_the_folder_is_one_line_for_both_readers(location, elsewhere):
    path = with_nodes(xor_model(elsewhere)[0], dead_constant(location), path=elsewhere / "escape.onnx")
    pattern = r"escape.onnx: tensor 'stolen' keeps its data in .*: a model's files are read from its own folder only"
    with pytest.raises(ModelFileError, match=pattern):
        Network.from_onnx(path)
    with pytest.raises(ModelFileError, match=pattern):  # before onnxruntime ever sees the file
        session(path)


def test_a_link_inside_the_folder_is_not_followed(elsewhere):
    os.symlink(elsewhere.parent / "cwd" / "private", elsewhere / "private")
    path = with_nodes(xor_model(elsewhere)[0], dead_constant("private/key.bin"), path=elsewhere / "link.onnx")
    for read in (Network.from_onnx, session):
        with pytest.raises(ModelFileError, match=r"link.onnx: tensor 'stolen' .*: private is a link"):
            read(path)


def test_data_beyond_the_file_or_of_the_wrong_length_is_refused(elsewhere):
    (elsewhere / "short.bin").write_bytes(b"\0" * 8)
    path = with_nodes(xor_model(elsewhere)[0], dead_constant("short.bin"), path=elsewhere / "short.onnx")
    with pytest.raises(ModelFileError, match=r"short.onnx: tensor 'stolen' .* at bytes 0 to 16, beyond the file's 8"):
        Network.from_onnx(path)
    model = xor_model(elsewhere)[0]
    (elsewhere / "long.bin").write_bytes(b"\0" * 64)
    node = helper.make_node("Constant", [], ["stolen"], value=external("stolen", np.zeros(4, np.float32), "long.bin"))
    node.attribute[0].t.external_data[2].value = "64"  # the length says 64 bytes for 4 floats
    with pytest.raises(ModelFileError, match=r"64 bytes for a tensor of shape \[4\] that needs 16"):
        Network.from_onnx(with_nodes(model, node, path=elsewhere / "long.onnx"))


def test_sparse_tensors_and_other_attributes_are_checked_too(elsewhere):
    model = xor_model(elsewhere)[0]
    values = external("v", np.zeros(1, np.float32), "../cwd/private/key.bin")
    indices = numpy_helper.from_array(np.zeros(1, np.int64), "i")
    model.graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [4]))
    onnx.save(model, str(elsewhere / "sparse.onnx"))
    with pytest.raises(ModelFileError, match=r"sparse.onnx: tensor 'v' keeps its data in '../cwd/private/key.bin'"):
        Network.from_onnx(elsewhere / "sparse.onnx")
    fill = helper.make_node("ConstantOfShape", ["shape"], ["zeros"],
                            value=external("fill", np.zeros(1, np.float32), "/etc/hostname"))
    shape = helper.make_node("Constant", [], ["shape"], value=numpy_helper.from_array(np.array([2], np.int64)))
    path = with_nodes(xor_model(elsewhere)[0], shape, fill, path=elsewhere / "fill.onnx")
    for read in (Network.from_onnx, session):
        with pytest.raises(ModelFileError, match=r"fill.onnx: tensor 'fill' keeps its data in '/etc/hostname'"):
            read(path)


# ---------------------------------------------------------------------------- memory bombs

N = 2**16  # [N, N] float32 is 16 GiB: never allocated, only refused


def shape_constant(name, dims):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(dims, np.int64), name))


def one(name):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.ones(1, np.float32), name))


BOMBS = {
    "Expand": lambda: [one("x"), shape_constant("s", [N, N]), helper.make_node("Expand", ["x", "s"], ["big"])],
    "ConstantOfShape": lambda: [shape_constant("s", [N, N]), helper.make_node("ConstantOfShape", ["s"], ["big"])],
    "Mul": lambda: [helper.make_node("Constant", [], ["a"], value=numpy_helper.from_array(np.ones((N, 1), np.int8))),
                    helper.make_node("Constant", [], ["b"], value=numpy_helper.from_array(np.ones((1, N), np.int8))),
                    helper.make_node("Mul", ["a", "b"], ["big"])],
    "Concat": lambda: [helper.make_node("Constant", [], ["a"], value=numpy_helper.from_array(np.ones(2**20, np.int8))),
                       helper.make_node("Concat", ["a"] * 64, ["big"], axis=0)],
    "Gather": lambda: [helper.make_node("Constant", [], ["a"], value=numpy_helper.from_array(np.ones((1, N), np.int8))),
                       helper.make_node("Constant", [], ["i"], value=numpy_helper.from_array(np.zeros(N, np.int64))),
                       helper.make_node("Gather", ["a", "i"], ["big"], axis=0)],
}


@pytest.mark.parametrize("op", list(BOMBS))
def test_a_dead_node_over_a_huge_shape_is_refused_before_it_allocates(op, tmp_path, monkeypatch):
    path = with_nodes(xor_model(tmp_path)[0], *BOMBS[op](), path=tmp_path / "bomb.onnx")
    assert path.stat().st_size < 2**22  # a small file ...
    allocated = []
    real = np.broadcast_to
    monkeypatch.setattr(np, "broadcast_to", lambda x, shape, **k: allocated.append(shape) or real(x, shape, **k))
    with pytest.raises(ModelFileError, match=rf"bomb.onnx: node .*\(op {op}\) cannot be evaluated \(it would make "
                                             rf"[\d,]+ values; a value computed in the graph may have at most "
                                             rf"{folding.MAX_VALUES:,}\)"):
        Network.from_onnx(path)
    assert not allocated  # ... refused before the values are made
    with pytest.raises(ModelFileError, match=rf"bomb.onnx: node .*\(op {op}\) would make a constant of [\d,]+ values "
                                             rf"when onnxruntime loads it; a value computed in the graph may have at "
                                             rf"most {folding.MAX_VALUES:,}"):
        session(path)


def test_a_small_constant_beside_the_network_is_still_read(tmp_path):
    path = with_nodes(xor_model(tmp_path)[0], one("x"), shape_constant("s", [3, 4]),
                      helper.make_node("Expand", ["x", "s"], ["small"]), path=tmp_path / "small.onnx")
    assert Network.from_onnx(path).spec.outputs == 1
    assert session(path) is not None
