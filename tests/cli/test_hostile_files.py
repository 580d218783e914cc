"""Model files and values that lie or nest without end: one line on stderr, exit code 2, no traceback,
and nothing large allocated (what a header promises is refused, never read)."""

import io
import json
import zipfile

import numpy as np
import onnx
import pytest

from harness import npzfile
from harness.errors import ModelFileError
from harness.scratch import Network
from harness.spec import network_from_dict
from tests.cli.test_bad_input import assert_one_clear_line, run_cli
from tests.cli.test_cli import ROOT

XOR_NET = {"inputs": 2, "outputs": 1, "output_activation": "sigmoid"}


def member(name, shape, dtype, data=None):
    """One zip member: a .npy header for `shape` and `dtype`, then `data` (zeros of the promised size without)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                  "fortran_order": False, "shape": shape})
    body = bytes(int(np.prod(shape)) * np.dtype(dtype).itemsize) if data is None else data
    return name, header.getvalue() + body


def rewrite(good, path, drop=(), add=()):
    """`good` (a .npz) with the members `drop` left out and the (name, bytes) of `add` added."""
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename not in drop:
                dst.writestr(info.filename, src.read(info))
        for name, data in add:
            dst.writestr(name, data)
    return path


def spec_text(**changes):
    from harness.spec import network_to_dict

    return json.dumps({"dtype": "float32", **network_to_dict(network_from_dict(XOR_NET)), **changes})


@pytest.fixture
def good(tmp_path):
    return Network(network_from_dict(XOR_NET), seed=0, dtype="float32").save(tmp_path / "good.npz")


def deep(n):
    return "[" * n + "]" * n


NPZ = {  # case -> (members dropped, members added, the message)
    "a member without .npy promising 1 GiB": ((), [member("payload", (2**30,), np.uint8, b"")],
                                              r"member 'payload' is not a .npy array"),
    "a weight without .npy whose header promises 10^12 values": (
        ("layers.0.weight.npy",), [member("layers.0.weight", (10**12,), np.float32, b"\0" * 16)],
        r"member 'layers.0.weight' is not a .npy array"),
    "an unknown name": ((), [member("evil.npy", (4,), np.float32)], r"'evil' .*not a name Network.save writes"),
    "the spec as an object": (("__network__.npy",), [("__network__.npy", b"")], r"not a readable .npz"),
    "the spec as a huge string": (("__network__.npy",), [member("__network__.npy", (), "<U2000000")],
                                  r"'__network__' \(<U2000000, shape \(\)\): must be one string of at most"),
    "the spec as complex numbers": (("__network__.npy",), [member("__network__.npy", (2,), np.complex128)],
                                    r"'__network__' .*must be one string"),
    "the network's dtype complex128": (("__network__.npy",), [
        member("__network__.npy", (), "<U2000", np.array(spec_text(dtype="complex128"), "<U2000").tobytes())],
        r"its network's dtype is 'complex128'; a network is float32 or float64"),
    "a complex weight": (("layers.0.bias.npy",), [member("layers.0.bias.npy", (1,), np.complex64)],
                         r"'layers.0.bias' .*a tensor must hold real numbers"),
    "the spec nested 100,000 deep": (("__network__.npy",), [
        member("__network__.npy", (), "<U200000", np.array(deep(100_000), "<U200000").tobytes())],
        r"nested more than 32 deep"),
    "the spec nested 500 deep": (("__network__.npy",), [
        member("__network__.npy", (), "<U1200", np.array(json.dumps({"layers": json.loads(deep(500))}),
                                                         "<U1200").tobytes())],
        r"nested more than 32 deep"),
}


@pytest.mark.parametrize("case", list(NPZ))
def test_a_lying_npz_is_one_line_before_any_array_is_read(case, good, tmp_path, capsys, monkeypatch):
    drop, add, pattern = NPZ[case]
    if case == "the spec as an object":
        buf = io.BytesIO()
        np.save(buf, np.array({"a": 1}, dtype=object), allow_pickle=True)
        add = [("__network__.npy", buf.getvalue())]
        pattern = r"holds pickled Python objects, which are never loaded"
    path = rewrite(good, tmp_path / "bad.npz", drop, add)
    read = []
    if "spec" not in case and "dtype" not in case:  # refused on its headers: no array is ever read
        monkeypatch.setattr(np.lib.format, "read_array", lambda *a, **k: read.append(a))
    code, err = run_cli(capsys, "evaluate", path, "--data", "xor")
    assert_one_clear_line(code, err, pattern)
    assert not read


def test_the_members_together_are_capped(good):
    sizes = [info.file_size for info in zipfile.ZipFile(good).infolist()]
    with pytest.raises(npzfile.NpzError, match=rf"its members hold {sum(sizes):,} bytes together, more than"):
        npzfile.read(good, max_bytes=sum(sizes) - 1)
    assert set(npzfile.read(good, max_bytes=sum(sizes))) == {"__network__", "__metadata__", "layers.0.weight",
                                                             "layers.0.bias"}


def xor_onnx(tmp_path, **metadata):
    return Network(network_from_dict(XOR_NET), seed=0).save(tmp_path / "m.onnx", metadata)


def test_onnx_experiment_metadata_nested_100k_deep_is_one_line_even_with_a_named_dataset(tmp_path, capsys):
    path = xor_onnx(tmp_path, experiment=deep(100_000))
    code, err = run_cli(capsys, "evaluate", path)
    assert_one_clear_line(code, err, r"the experiment saved in its metadata is malformed \(nested more than 32 deep")
    code, err = run_cli(capsys, "evaluate", path, "--data", "xor")
    assert code == 0, err


@pytest.mark.parametrize("saved", ["[1, 2]", '{"layers": 5}', '{"init": ["x"]}', '{"layers": [5, "x"]}', "7",
                                   deep(100_000), json.dumps({"init": json.loads(deep(500))})])
def test_onnx_network_metadata_of_any_type_or_depth_is_left_out(saved, tmp_path):
    net = Network.from_onnx(xor_onnx(tmp_path, network=saved))
    assert net.spec.input_shape == (2,) and net.spec.init == "xavier_uniform"


def test_a_maxpool_of_stride_0_is_one_line(tmp_path):
    net = Network(network_from_dict({"input_shape": [1, 8, 8], "outputs": 2, "layers": [
        {"type": "maxpool2d", "kernel": 2}, {"type": "flatten"}]}), seed=0)
    model = onnx.load(str(net.save(tmp_path / "pool.onnx")))
    pool = next(n for n in model.graph.node if n.op_type == "MaxPool")
    next(a for a in pool.attribute if a.name == "strides").ints[:] = [0, 0]
    onnx.save(model, str(tmp_path / "pool.onnx"))
    with pytest.raises(ModelFileError, match=r"pool.onnx: node 'layers.0' \(op MaxPool\): its stride \(0, 0\) must be "
                                             r"at least 1"):
        Network.from_onnx(tmp_path / "pool.onnx")


@pytest.mark.parametrize("value", [deep(50_000), deep(40), "{a=" * 40 + "1" + "}" * 40])
def test_a_set_value_nested_deeply_is_one_line(value, capsys):
    code, err = run_cli(capsys, "check", ROOT / "experiments" / "xor.toml", "--set", f"training.epochs={value}")
    assert_one_clear_line(code, err, r"--set training.epochs=...: the value is nested more than 32 deep")


LONG = "a" * 300
PATHS = [
    ("an experiment path with a 300-byte name", ["run", f"/tmp/{LONG}/x.toml"],
     r"experiment file '/tmp/a+'... is too long for a file system: at most 255 bytes a name"),
    ("data.path with a 300-byte name", ["check", "MNIST", "--set", f"data.path='/tmp/{LONG}'"],
     r"data.path '/tmp/a+'... is too long for a file system"),
    ("data.path of a user who is not", ["check", "MNIST", "--set", "data.path='~nosuchuser/x'"],
     r"data.path '~nosuchuser/x': ~nosuchuser is not a user of this machine"),
    ("a model path with a 300-byte name", ["evaluate", f"/tmp/{LONG}.onnx", "--data", "xor"],
     r"model file '/tmp/a+'... is too long"),
    ("a checkpoint path with a 300-byte name", ["evaluate", f"/tmp/{LONG}.npz", "--data", "xor"],
     r"model file '/tmp/a+'... is too long"),
    ("a store path with a 300-byte name", ["report", "--tracking-uri", f"sqlite:////tmp/{LONG}/x.db"],
     r"the tracking store's file '/tmp/a+'... is too long"),
    ("a store of a user who is not", ["report", "--tracking-uri", "sqlite:///~nosuchuser/x.db"],
     r"~nosuchuser is not a user of this machine"),
    ("leaky_relu slope nan", ["check", "XOR", "--set", "network.hidden.0.activation={name='leaky_relu', slope=nan}"],
     r"network.hidden.0.activation.slope = nan: must be a finite number"),
    ("elu alpha inf", ["check", "XOR", "--set", "network.hidden.0.activation={name='elu', alpha=inf}"],
     r"network.hidden.0.activation.alpha = inf: must be a finite number"),
    ("learning rate inf", ["check", "XOR", "--set", "training.optimizer.learning_rate=inf"],
     r"learning_rate = inf: must be a finite number"),
]


@pytest.mark.parametrize("case,argv,pattern", PATHS, ids=[c[0] for c in PATHS])
def test_paths_no_file_system_holds_and_numbers_that_are_not_are_one_line(case, argv, pattern, capsys):
    names = {"XOR": "xor.toml", "MNIST": "mnist.toml"}
    code, err = run_cli(capsys, *[ROOT / "experiments" / names[a] if a in names else a for a in argv])
    assert_one_clear_line(code, err, pattern)
