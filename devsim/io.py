"""Atomic file writes: a reader never sees a half-written result file.

Every writer puts its bytes in a temporary file in the destination folder and
then `os.replace`s it onto the final name, which is atomic on POSIX and
Windows. An interrupted run therefore leaves either the old file or the new
one, never a truncated one.
"""

from __future__ import annotations

import contextlib
import json
import math
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
        with atomic_path(folder / ".devsim-write-test") as tmp:
            Path(tmp).write_bytes(b"\0" * 65536)  # a full disk refuses data, not an empty file
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


@contextlib.contextmanager
def folder_lock(lock_file, option: str = "--out", what: str = "run"):
    """Hold an exclusive lock on ``lock_file`` while the block runs, or ConfigError naming ``option``.

    Two devsim processes writing the same run or sweep folder at once would
    destroy each other's work; the second one stops here with a one-line
    error instead. The lock is an ``flock`` on a small file beside the folder,
    released when the process ends, however it ends.
    """
    import fcntl

    from devsim.errors import ConfigError

    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise ConfigError(f"{option}: another devsim {what} is writing {lock_file.parent} ({holder}); "
                              "wait for it to finish or choose another --name/--out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(lock_file)  # still held: a process that opens it now makes a new one
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_text(path, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def write_json(path, obj) -> None:
    """Write `obj` as indented, strict JSON to `path` atomically.

    Strict: infinite and NaN floats (which JSON has no literal for) are written
    as the strings ``"inf"``, ``"-inf"`` and ``"nan"``; devsim's readers accept
    them wherever a number is expected (``float("inf")`` parses them too).
    """
    write_text(path, json.dumps(jsonable(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")


def jsonable(obj):
    """`obj` with numpy values as Python ones, Paths as text and non-finite floats as text."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
