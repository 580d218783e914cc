"""The scratch engine's own workers: how a batch is split, that every sample is worked once, that
BLAS gets its threads back, that an error in one range surfaces after all ranges ended, and that
a convolution split over workers computes what one thread computes."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController

from harness.layers import LayerSpec
from harness.scratch import parallel
from harness.scratch.layers import AvgPool2d, BatchNorm, Conv2d, MaxPool2d

BLAS = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
needs_blas = pytest.mark.skipif(not BLAS, reason="no BLAS library threadpoolctl can control")


@pytest.fixture
def blas_at_two():
    before = [c.get_num_threads() for c in BLAS]
    for c in BLAS:
        c.set_num_threads(2)
    yield
    for c, k in zip(BLAS, before, strict=True):
        c.set_num_threads(k)


@pytest.mark.parametrize("n", [1, 2, 5, 7, 64, 65])
@pytest.mark.parametrize("parts", [1, 2, 3, 8, 100])
def test_split_covers_the_range_in_nearly_equal_contiguous_parts(n, parts):
    ranges = parallel.split(n, parts)
    assert len(ranges) == min(n, parts)
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    lengths = [e - s for s, e in ranges]
    assert min(lengths) >= 1 and max(lengths) - min(lengths) <= 1


@needs_blas
@pytest.mark.parametrize("n", [2, 3, 7, 10])
def test_every_sample_is_worked_once_on_one_blas_thread_and_blas_gets_its_threads_back(n, blas_at_two, monkeypatch):
    monkeypatch.setattr(parallel, "workers", lambda: 3)
    seen = np.zeros(n, int)
    workers, threads = set(), set()
    lock = threading.Lock()

    def work(worker, start, end):
        with lock:
            seen[start:end] += 1
            workers.add(worker)
            threads.add(BLAS[0].get_num_threads())

    parallel.over_samples(n, work)
    np.testing.assert_array_equal(seen, 1)
    assert workers == set(range(min(3, n)))
    assert threads == {1}
    assert [c.get_num_threads() for c in BLAS] == [2] * len(BLAS)


def test_too_few_samples_per_worker_runs_on_the_calling_thread(monkeypatch):
    monkeypatch.setattr(parallel, "workers", lambda: 4)
    calls = []
    parallel.over_samples(5, lambda w, s, e: calls.append((w, s, e, threading.get_ident())), min_per_worker=3)
    assert calls == [(0, 0, 5, threading.get_ident())]


def test_an_error_in_one_range_is_raised_after_every_range_has_finished(monkeypatch):
    monkeypatch.setattr(parallel, "workers", lambda: 3)
    done = []
    slow = threading.Event()

    def work(worker, start, end):
        if worker == 1:
            raise ValueError("range 1 failed")
        if worker == 2:
            slow.wait(0.2)  # still working when range 1 has failed
        done.append(worker)

    with pytest.raises(ValueError, match="range 1 failed"):
        parallel.over_samples(9, work)
    assert sorted(done) == [0, 2]
    parallel.over_samples(3, lambda w, s, e: done.append(("again", w)))  # the workers are usable again
    assert sorted(x for x in done if isinstance(x, tuple)) == [("again", 0), ("again", 1), ("again", 2)]


@needs_blas
def test_own_threads_holds_blas_at_one_and_gives_its_threads_to_the_workers(blas_at_two):
    with parallel.own_threads():
        assert BLAS[0].get_num_threads() == 1
        assert parallel.workers() == 2
        with parallel.own_threads():  # nested: changes nothing
            assert BLAS[0].get_num_threads() == 1 and parallel.workers() == 2
        assert BLAS[0].get_num_threads() == 1
    assert [c.get_num_threads() for c in BLAS] == [2] * len(BLAS)
    with parallel.own_threads(enabled=False):
        assert BLAS[0].get_num_threads() == 2


def conv(filters, kernel, stride, padding, in_shape, seed=0):
    spec = LayerSpec("conv2d", (("filters", filters), ("kernel", kernel), ("stride", stride), ("padding", padding)))
    layer = Conv2d(spec, in_shape, np.float64)
    layer.block = 2  # several blocks per worker
    rng = np.random.default_rng(seed)
    shapes = layer.param_shapes()
    params = {k: rng.normal(size=s) for k, s in shapes.items()}
    layer.bind(params, {k: np.zeros(s) for k, s in shapes.items()})
    return layer


def forward_backward(layer, x, g):
    y = layer.forward(x, training=True).copy()
    dx = layer.backward(g).copy()
    return y, dx, layer.grads["weight"].copy(), layer.grads["bias"].copy()


# odd batches; stride 2 (rows wider than the output); no padding, where the last junk window of
# one worker's range reaches into the next worker's samples
GEOMETRIES = [((3, 3), (1, 1), (1, 1), (2, 8, 8)), ((3, 3), (2, 2), (1, 1), (3, 9, 7)),
              ((5, 5), (1, 1), (0, 0), (2, 9, 9)), ((2, 3), (1, 2), (0, 0), (1, 6, 8))]


@pytest.mark.parametrize(("kernel", "stride", "padding", "in_shape"), GEOMETRIES)
@pytest.mark.parametrize("n", [3, 7])
def test_a_convolution_split_over_workers_equals_one_worker(kernel, stride, padding, in_shape, n, monkeypatch):
    rng = np.random.default_rng(1)
    layer = conv(4, kernel, stride, padding, in_shape)
    x = rng.normal(size=(n, *in_shape))
    g = rng.normal(size=(n, *layer.out_shape))
    monkeypatch.setattr(parallel, "workers", lambda: 1)
    alone = forward_backward(layer, x, g)
    monkeypatch.setattr(parallel, "workers", lambda: 3)
    for _ in range(2):  # the second time over buffers the first left dirty
        split = forward_backward(layer, x, g)
        for a, b in zip(alone, split, strict=True):
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-12)


def test_two_threads_running_convolutions_at_once_each_get_their_own_result(monkeypatch):
    monkeypatch.setattr(parallel, "workers", lambda: 2)
    rng = np.random.default_rng(2)
    layers = [conv(4, (3, 3), (1, 1), (1, 1), (2, 8, 8), seed=s) for s in (0, 1)]
    xs = [rng.normal(size=(5, 2, 8, 8)) for _ in layers]
    gs = [rng.normal(size=(5, 4, 8, 8)) for _ in layers]
    expected = [forward_backward(layer, x, g) for layer, x, g in zip(layers, xs, gs, strict=True)]
    results, errors = [None, None], []

    def go(i):
        try:
            for _ in range(20):
                results[i] = forward_backward(layers[i], xs[i], gs[i])
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=go, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for want, got in zip(expected, results, strict=True):
        for a, b in zip(want, got, strict=True):
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-12)


def bound_layer(cls, spec, in_shape, seed=0):
    layer = cls(spec, in_shape, np.float64)
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(size=s) for k, s in layer.param_shapes().items()}
    state = {k: np.abs(rng.normal(size=s)) for k, s in layer.state_shapes().items()}
    layer.bind(params, {k: np.zeros(s) for k, s in layer.param_shapes().items()}, state)
    return layer


def pool(kind, kernel, stride, padding):
    return LayerSpec(kind, (("kernel", kernel), ("stride", stride), ("padding", padding)))


def norm(affine=True):
    return LayerSpec("batchnorm", (("eps", 1e-5), ("momentum", 0.1), ("affine", affine)))


SPLIT_LAYERS = {  # (class, spec, input shape, input: "normal" or "zeros" (every max-pool window a tie))
    "maxpool": (MaxPool2d, pool("maxpool2d", (2, 2), (2, 2), (0, 0)), (3, 8, 8), "normal"),
    "maxpool ties": (MaxPool2d, pool("maxpool2d", (2, 2), (2, 2), (0, 0)), (3, 8, 8), "zeros"),
    "maxpool overlapping padded": (MaxPool2d, pool("maxpool2d", (3, 3), (2, 2), (1, 1)), (2, 7, 9), "normal"),
    "avgpool padded": (AvgPool2d, pool("avgpool2d", (3, 3), (2, 2), (1, 1)), (2, 7, 9), "normal"),
    "batchnorm image": (BatchNorm, norm(), (3, 5, 4), "normal"),
    "batchnorm flat": (BatchNorm, norm(), (6,), "normal"),
    "batchnorm no affine": (BatchNorm, norm(affine=False), (3, 5, 4), "normal"),
}


def steps(layer, x, g):
    """Training forward and backward, then an evaluation forward: outputs, gradients and state."""
    out = [layer.forward(x, training=True).copy(), layer.backward(g).copy()]
    out += [v.copy() for v in layer.grads.values()] + [v.copy() for v in layer.state.values()]
    return [*out, layer.forward(x, training=False).copy()]


@pytest.mark.parametrize("name", SPLIT_LAYERS)
@pytest.mark.parametrize("n", [5, 8])
def test_pooling_and_batchnorm_split_over_workers_equal_one_worker(name, n, monkeypatch):
    cls, spec, in_shape, kind = SPLIT_LAYERS[name]
    rng = np.random.default_rng(3)
    x = rng.normal(size=(n, *in_shape)) if kind == "normal" else np.zeros((n, *in_shape))
    monkeypatch.setattr(parallel, "MIN_ELEMENTS", 1)  # split even these small batches
    results = []
    for workers in (1, 3):
        monkeypatch.setattr(parallel, "workers", lambda workers=workers: workers)
        layer = bound_layer(cls, spec, in_shape)
        layer.block = 1  # several blocks per worker
        g = np.random.default_rng(4).normal(size=(n, *layer.out_shape))
        results.append(steps(layer, x, g))
    assert len(results[0]) == len(results[1])
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-12)
