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
import shutil
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


def check_name(option: str, name: str) -> str:
    """A name that becomes a folder or file name: one plain path component, or ConfigError.

    Every name devsim turns into a path (run, sweep, device and fit names) is
    checked here, so none can point outside the folder it is written under.
    """
    from devsim.errors import ConfigError

    if (not isinstance(name, str) or not name.strip() or name != name.strip() or "/" in name or "\\" in name
            or name.startswith(".") or "\0" in name or len(name.encode()) > 200):
        raise ConfigError(f"{option}: must be a plain folder name (no '/', not starting with '.'), got {name!r}")
    return name


def check_writable(folder: Path, option: str = "--out") -> None:
    """Create ``folder`` if needed and make sure a file can be written in it, or ConfigError naming ``option``."""
    from devsim.errors import ConfigError

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / ".devsim-write-test"):
            pass
        os.unlink(folder / ".devsim-write-test")
    except OSError as exc:
        raise ConfigError(f"{option}: cannot write to {folder} ({exc.strerror or exc})") from None


def replace_dir(src: Path, dst: Path) -> None:
    """Move the finished folder ``src`` onto ``dst``, replacing an earlier result there."""
    src, dst = Path(src), Path(dst)
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, old)
        os.replace(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dst)


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
