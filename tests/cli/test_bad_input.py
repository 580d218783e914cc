"""Every mistake a user can make: one line on stderr, exit code 2, no traceback, no run in the store.

The same table is in the README's troubleshooting section.
"""

import gzip
import shutil

import numpy as np
import pytest

from harness import cli
from harness.data import mnist
from harness.scratch import Network
from harness.spec import network_from_dict
from tests.cli.test_cli import ROOT

XOR = (ROOT / "experiments" / "xor.toml").read_text()
MNIST = (ROOT / "experiments" / "mnist.toml").read_text()


def edit(text, old, new):
    assert old in text, old
    return text.replace(old, new, 1)


# (case id, experiment file text, pattern of the message)
BAD_FILES = [
    ("not TOML", "[network\ninputs = 2\n", r"not valid TOML"),
    ("empty", "", r"the file is empty; an experiment needs at least \[data\], \[network\] and \[training\]"),
    ("unknown key", edit(XOR, "epochs = 500", "epoch = 500"), r"unknown key 'training.epoch' \(did you mean"),
    ("wrong type", edit(XOR, "epochs = 500", 'epochs = "many"'), r"training.epochs = 'many': must be an integer"),
    ("units 0", edit(XOR, "units = 4", "units = 0"), r"network.hidden.0.units = 0: must be an integer from 1"),
    ("units negative", edit(XOR, "units = 4", "units = -4"), r"network.hidden.0.units = -4: must be an integer"),
    ("unknown activation", edit(XOR, 'activation = "tanh"', 'activation = "swish"'),
     r"unknown activation 'swish'; known: elu, gelu"),
    ("unknown loss", edit(XOR, 'loss = "bce"', 'loss = "hinge"'), r"unknown loss 'hinge'; known: bce"),
    ("unknown optimizer", edit(XOR, 'name = "sgd"', 'name = "rmsprop"'), r"unknown optimizer 'rmsprop'; known"),
    ("unknown initializer", edit(XOR, 'init = "xavier_uniform"', 'init = "glorot"'),
     r"unknown initializer 'glorot'; known"),
    ("unknown dataset", edit(XOR, 'dataset = "xor"', 'dataset = "cifar10"'), r"unknown dataset 'cifar10'; known"),
    ("unknown engine", edit(XOR, 'engines = ["scratch", "torch"]', 'engines = ["jax"]'),
     r"unknown engine 'jax'; known: scratch, torch"),
    ("softmax on a hidden layer", edit(XOR, 'activation = "tanh"', 'activation = "softmax"'),
     r"softmax is for the output layer only"),
    ("loss and output do not fit", edit(XOR, 'loss = "bce"', 'loss = "cross_entropy"'),
     r"'cross_entropy' needs network.output_activation = 'softmax', got 'sigmoid'"),
    ("inputs do not match the data", edit(XOR, "inputs = 2", "inputs = 3"),
     r"network.inputs = 3, but dataset 'xor' has 2 features per sample; set network.inputs = 2"),
    ("outputs do not match the classes", edit(MNIST, "outputs = 10", "outputs = 9"),
     r"network.outputs = 9, but dataset 'mnist' needs 10 outputs; set network.outputs = 10"),
    ("learning rate 0", edit(XOR, "learning_rate = 0.5", "learning_rate = 0"), r"learning_rate = 0.0: must be > 0"),
    ("learning rate negative", edit(XOR, "learning_rate = 0.5", "learning_rate = -0.5"), r"must be > 0"),
    ("batch size 0", edit(XOR, "batch_size = 4", "batch_size = 0"), r"training.batch_size = 0: must be an integer"),
    ("batch larger than the data", edit(XOR, "batch_size = 4", "batch_size = 5"),
     r"training.batch_size = 5 is larger than the 4 training samples of 'xor'"),
    ("epochs 0", edit(XOR, "epochs = 500", "epochs = 0"), r"training.epochs = 0: must be an integer from 1"),
    ("name is a path", edit(XOR, 'name = "xor"', 'name = "/tmp/elsewhere/x"'), r"name = '/tmp/elsewhere/x': must be"),
    ("name climbs out", edit(XOR, 'name = "xor"', 'name = "../../x"'), r"name = '../../x': must be 1-64 letters"),
    ("name with an escape sequence", edit(XOR, 'name = "xor"', 'name = "x\\u001b[31mred"'), r"name = 'x\\x1b"),
    ("name with NUL", edit(XOR, 'name = "xor"', 'name = "x\\u0000y"'), r"name = 'x\\x00y': must be"),
    ("name too long", edit(XOR, 'name = "xor"', f'name = "{"n" * 65}"'), r"must be 1-64 letters"),
    ("threads beyond the machine", edit(XOR, "threads = 1", "threads = 20000"),
     r"training.threads = 20000: must be between 0 \(every core\) and \d+, the cores of this machine"),
    ("nested 20,000 deep", "x = " + "[" * 20000 + "]" * 20000 + "\n", r"nested too deeply"),
    ("a sweep of millions", XOR + '\n[sweep]\n"training.epochs" = [' + ", ".join(map(str, range(1, 2001)))
     + ']\n"training.batch_size" = [1, 2, 3, 4]\n',
     r"a sweep may have at most 1000 variants"),
]


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.err.strip()


def assert_one_clear_line(code, err, pattern):
    import re

    assert code == 2, err
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("harness"), err
    assert re.search(pattern, err), err


@pytest.mark.parametrize("case,text,pattern", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_a_bad_experiment_file_creates_no_run(case, text, pattern, tmp_path, capsys):
    path = tmp_path / "experiment.toml"
    path.write_text(text)
    db = tmp_path / "mlflow.db"
    code, err = run_cli(capsys, "bench", path, "--tracking-uri", f"sqlite:///{db}")
    assert_one_clear_line(code, err, pattern)
    assert not db.exists()  # validation comes before the store is even opened


COMMAND_LINE = [
    ("missing file", ["run", "experiments/nope.toml"], r"experiment file not found: experiments/nope.toml"),
    ("bad --set syntax", ["run", "XOR", "--set", "training.epochs"], r"expected KEY=VALUE, such as"),
    ("--set unknown key", ["run", "XOR", "--set", "training.epoc=3"], r"unknown key 'training.epoc'"),
    ("--set bad value", ["run", "XOR", "--set", "training.epochs=-1"], r"training.epochs = -1"),
    ("unknown option", ["run", "XOR", "--epochs", "3"], r"unrecognized arguments: --epochs 3 \(see"),
    ("unknown engine option", ["run", "XOR", "--engine", "jax"], r"invalid choice: 'jax'"),
    ("unknown subcommand", ["train", "XOR"], r"invalid choice: 'train'"),
    ("threads beyond the machine", ["run", "XOR", "--threads", "20000"],
     r"--threads: 20000 is out of range: must be from 0 to \d+ \(0 = every core; this machine has \d+\)"),
    ("threads negative", ["bench", "XOR", "--threads", "-1"], r"--threads: -1 is out of range"),
    ("seed negative", ["run", "XOR", "--seed", "-1"], r"--seed: -1 is out of range: must be from 0"),
    ("parity epochs negative", ["parity", "XOR", "--epochs", "-1"], r"--epochs: -1 is out of range"),
    ("perf repeats 0", ["perf", "--repeats", "0"], r"--repeats: 0 is out of range"),
    ("busy threshold 0", ["bench", "XOR", "--busy-threshold", "0"],
     r"--busy-threshold: 0 is out of range: must be above 0 and at most 100 \(percent\)"),
    ("busy threshold not a number", ["perf", "--busy-threshold", "ten"], r"--busy-threshold: 'ten' is not a number"),
    ("sqlite URI without a file", ["bench", "XOR", "--tracking-uri", "sqlite:///"],
     r"the tracking URI sqlite:/// names no database file"),
]


@pytest.mark.parametrize("case,argv,pattern", COMMAND_LINE, ids=[c[0] for c in COMMAND_LINE])
def test_command_line_mistakes(case, argv, pattern, capsys):
    argv = [str(ROOT / "experiments" / "xor.toml") if a == "XOR" else a for a in argv]
    try:
        code, err = run_cli(capsys, *argv)
    except SystemExit as e:  # argparse's own exit, with our one-line message
        code, err = e.code, capsys.readouterr().err.strip()
    assert_one_clear_line(code, err, pattern)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch, mnist_ready):
    folder = tmp_path / "cache"
    folder.mkdir()
    monkeypatch.setenv("HARNESS_DATA_DIR", str(folder))
    return folder


def mnist_run(capsys, *extra):
    return run_cli(capsys, "run", ROOT / "experiments" / "mnist.toml", "--set", "training.epochs=1", *extra)


@pytest.mark.slow
def test_missing_mnist_cache(cache_dir, capsys):
    code, err = mnist_run(capsys)
    assert_one_clear_line(code, err, r"MNIST is not in the cache .*; run `harness data fetch mnist`")


@pytest.mark.slow
def test_truncated_mnist_cache(cache_dir, mnist_ready, capsys):
    (cache_dir / mnist.CACHE_NAME).write_bytes(mnist_ready.read_bytes()[:5_000_000])
    code, err = mnist_run(capsys)
    assert_one_clear_line(code, err, r"the MNIST cache .* is damaged .*run `harness data fetch mnist`")


@pytest.mark.slow
def test_altered_mnist_cache(cache_dir, mnist_ready, capsys):
    with np.load(mnist_ready) as f:
        arrays = {k: f[k].copy() for k in f.files}
    arrays["y_test"][0] = 3
    np.savez(cache_dir / mnist.CACHE_NAME, **arrays)
    code, err = mnist_run(capsys)
    assert_one_clear_line(code, err, r"digest .* differs from the pinned .*: the file was altered or truncated")


def test_idx_with_a_wrong_magic_number(tmp_path, capsys):
    for name, shape in (("train-images-idx3-ubyte", (2, 28, 28)), ("train-labels-idx1-ubyte", (2,)),
                        ("t10k-images-idx3-ubyte", (1, 28, 28)), ("t10k-labels-idx1-ubyte", (1,))):
        header = bytes([0, 0, 8, len(shape)]) + b"".join(n.to_bytes(4, "big") for n in shape)
        (tmp_path / name).write_bytes(header + bytes(int(np.prod(shape))))
    with gzip.open(tmp_path / "bad.gz", "wb") as f:
        f.write(b"x")
    shutil.copy(tmp_path / "bad.gz", tmp_path / "train-images-idx3-ubyte")  # gzip bytes where IDX belongs
    code, err = run_cli(capsys, "run", ROOT / "experiments" / "mnist.toml", "--set", f"data.path='{tmp_path}'",
                        "--set", "training.batch_size=2")
    assert_one_clear_line(code, err, r"not an IDX file \(magic number 1f8b")


@pytest.fixture
def models(tmp_path):
    net = Network(network_from_dict({"inputs": 2, "outputs": 1, "output_activation": "sigmoid"}), seed=0)
    onnx_bytes = net.save(tmp_path / "good.onnx").read_bytes()
    npz_bytes = net.save(tmp_path / "good.npz").read_bytes()
    files = {"corrupt.onnx": onnx_bytes[:20] + b"\xff" * 40 + onnx_bytes[60:],
             "truncated.onnx": onnx_bytes[: len(onnx_bytes) // 3], "text.onnx": b"not a model\n",
             "truncated.npz": npz_bytes[: len(npz_bytes) // 2], "corrupt.npz": b"PK\x03\x04" + b"\x00" * 64}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    np.savez(tmp_path / "pickled.npz", payload=np.array([{"os": "system"}], dtype=object))
    lying_npz(tmp_path / "lying.npz", npz_bytes)
    return tmp_path


def lying_npz(path, good_bytes):
    """good.npz with its first weight's header claiming 10^12 elements (about 8 TB) over the same 16 bytes."""
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(good_bytes)) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "layers.0.weight.npy":
                header = io.BytesIO()
                np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                              "shape": (10**12,)})
                data = header.getvalue() + b"\0" * 16
            dst.writestr(info.filename, data)


MODELS = [
    ("corrupt ONNX", "corrupt.onnx", r"corrupt.onnx: not a readable ONNX model"),
    ("truncated ONNX", "truncated.onnx", r"truncated.onnx: not a readable ONNX model"),
    ("not ONNX at all", "text.onnx", r"text.onnx: not a readable ONNX model"),
    ("truncated .npz", "truncated.npz", r"truncated.npz: not a readable .npz file"),
    ("corrupt .npz", "corrupt.npz", r"corrupt.npz: not a readable .npz file"),
    ("a .npz that asks for pickle", "pickled.npz", r"holds pickled Python objects, which are never loaded"),
    ("input width does not match", "good.onnx", r"the model takes 2 inputs per sample, the data has 784"),
    ("input width does not match (.npz)", "good.npz", r"the model takes 2 inputs per sample"),
    ("missing model", "absent.onnx", r"model file not found"),
    ("a .npz whose header lies about its shape", "lying.npz", r"header promises shape \(1000000000000,\)"),
]


def test_a_model_with_malformed_metadata_gets_one_line_and_still_runs_on_a_named_dataset(tmp_path, capsys,
                                                                                         mnist_ready):
    net = Network(network_from_dict({"inputs": 784, "outputs": 10, "output_activation": "softmax"}), seed=0)
    path = net.save(tmp_path / "badmeta.onnx", {"experiment": "{not json", "seed": "x"})
    code, err = run_cli(capsys, "evaluate", path)
    assert_one_clear_line(code, err, r"the experiment saved in its metadata is malformed .* name the dataset")
    assert run_cli(capsys, "evaluate", path, "--data", "mnist")[0] == 0


def test_torchs_own_export_with_a_fixed_batch_of_one_is_evaluated_batch_by_batch(tmp_path, capsys, mnist_ready):
    import warnings

    import torch

    model = torch.nn.Sequential(torch.nn.Linear(784, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10),
                                torch.nn.Softmax(dim=1))
    path = tmp_path / "legacy.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 784),), str(path), dynamo=False, opset_version=17)
    code = cli.main(["evaluate", str(path), "--data", "mnist"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "on 10,000 samples of mnist" in out.out and "fixed batch of 1: run 1 sample(s) at a time" in out.out


@pytest.mark.parametrize("case,name,pattern", MODELS, ids=[c[0] for c in MODELS])
def test_bad_model_files(case, name, pattern, models, capsys, mnist_ready):
    code, err = run_cli(capsys, "evaluate", models / name, "--data", "mnist")
    assert_one_clear_line(code, err, pattern)


def test_an_unreachable_tracking_server_fails_before_training(tmp_path, capsys):
    code, err = run_cli(capsys, "bench", ROOT / "experiments" / "xor.toml", "--tracking-uri", "http://127.0.0.1:9")
    assert_one_clear_line(code, err, r"the tracking server http://127.0.0.1:9 does not answer .*start it or pass")


def test_a_store_in_a_missing_folder(tmp_path, capsys):
    code, err = run_cli(capsys, "bench", ROOT / "experiments" / "xor.toml", "--tracking-uri",
                        f"sqlite:///{tmp_path}/no/such/dir/mlflow.db")
    assert_one_clear_line(code, err, r"the folder of the tracking store .* does not exist")


def test_the_table_has_at_least_30_cases():
    assert len(BAD_FILES) + len(COMMAND_LINE) + len(MODELS) + 6 >= 30


ADDITION = (ROOT / "experiments" / "addition.toml").read_text()


def idx_folder(folder, images_shape=(10, 28, 28), labels=10, images_file=None):
    """Four small IDX files; `images_file(path)` may replace the training images by something hostile."""
    import struct

    folder.mkdir(exist_ok=True)

    def write(name, shape):
        header = bytes([0, 0, 8, len(shape)]) + b"".join(struct.pack(">I", n) for n in shape)
        (folder / name).write_bytes(header + bytes(int(np.prod(shape))))

    write("train-labels-idx1-ubyte", (labels,))
    write("t10k-images-idx3-ubyte", (10, 28, 28))
    write("t10k-labels-idx1-ubyte", (10,))
    if images_file is None:
        write("train-images-idx3-ubyte", images_shape)
    else:
        images_file(folder / "train-images-idx3-ubyte")
    return folder


def fifo(path):
    import os

    os.mkfifo(path)


def zeros_device(path):
    path.symlink_to("/dev/zero")


def huge_header(path):
    import struct

    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">III", 60000000, 28, 28))


HOSTILE_DATA = [
    ("data.path missing", lambda tmp: tmp / "nowhere", r"data.path = '.*nowhere' is not a folder"),
    ("IDX file is a FIFO", lambda tmp: idx_folder(tmp / "d", images_file=fifo), r"not a regular file"),
    ("IDX file is /dev/zero", lambda tmp: idx_folder(tmp / "d", images_file=zeros_device), r"not a regular file"),
    ("IDX header promises 47 GB", lambda tmp: idx_folder(tmp / "d", images_file=huge_header),
     r"promises shape \(60000000, 28, 28\) .* more than"),
    ("IDX images and labels differ", lambda tmp: idx_folder(tmp / "d", labels=9), r"do not pair up"),
    ("batch larger than the IDX data", lambda tmp: idx_folder(tmp / "d"),
     r"training.batch_size = 64 is larger than the 10 training samples"),
]


@pytest.mark.parametrize("case,make,pattern", HOSTILE_DATA, ids=[c[0] for c in HOSTILE_DATA])
def test_hostile_data_paths_are_refused_before_any_run(case, make, pattern, tmp_path, capsys):
    folder = make(tmp_path)
    path = tmp_path / "mnist.toml"
    path.write_text(edit(MNIST, 'dataset = "mnist"', f'dataset = "mnist"\npath = "{folder}"'))
    db = tmp_path / "mlflow.db"
    code, err = run_cli(capsys, "bench", path, "--tracking-uri", f"sqlite:///{db}")
    assert_one_clear_line(code, err, pattern)
    assert not db.exists()


def test_a_generated_dataset_refuses_a_size_it_cannot_make(tmp_path, capsys):
    path = tmp_path / "addition.toml"
    path.write_text(edit(ADDITION, "train_size = 100", "train_size = 1000000000000"))
    db = tmp_path / "mlflow.db"
    code, err = run_cli(capsys, "bench", path, "--tracking-uri", f"sqlite:///{db}")
    assert_one_clear_line(code, err, r"data.train_size = 1000000000000: dataset 'addition' makes at most")
    assert not db.exists()


def test_a_database_store_that_never_answers_fails_fast_in_one_line(capsys):
    """A listener on loopback that accepts and never speaks: one line, the password hidden, no minutes
    of MLflow's own retries."""
    import socket
    import time

    pytest.importorskip("psycopg")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        port = silent.getsockname()[1]
        started = time.time()
        code, err = run_cli(capsys, "bench", ROOT / "experiments" / "xor.toml", "--tracking-uri",
                            f"postgresql+psycopg://u:secret@127.0.0.1:{port}/db?connect_timeout=2")
    assert time.time() - started < 90  # MLflow's own retries take minutes; a loaded machine slows the imports alone
    assert_one_clear_line(code, err, r"the tracking store postgresql\+psycopg://u:\*\*\*@127.0.0.1:\d+/db.* does not "
                                     r"answer: connection timeout expired")
    assert "secret" not in err
