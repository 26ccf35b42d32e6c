"""Atomic file writes: a reader never sees a half-written result file.

Every writer puts its bytes in a temporary file in the destination folder and
then `os.replace`s it onto the final name, which is atomic on POSIX and
Windows. An interrupted run therefore leaves either the old file or the new
one, never a truncated one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to `path`; move it onto `path` on success.

    Use it for writers that want a file name (``np.savez``, ``fig.savefig``)::

        with atomic_path("results/run/states.npz") as tmp:
            np.savez(tmp, **arrays)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give results the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def write_json(path, obj) -> None:
    """Write `obj` as indented JSON to `path` atomically (NaN and inf allowed)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(obj):
    # numpy scalars and arrays, Paths.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
