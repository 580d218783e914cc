import pytest


@pytest.fixture(scope="session")
def mnist_ready():
    """The MNIST cache, fetched once if this machine does not have it yet."""
    from harness.data import mnist

    return mnist.fetch(log=lambda *_: None)


from tests.browser import browser, page  # noqa: E402, F401  (headless Chromium, for the `browser` tests)
