"""Sweeps: the grid of run configurations, resumable, on one process, N processes or a Dask cluster.

A `Sweep` is a set of fixed `RunConfig` fields plus lists of values for the
swept ones; its runs are the Cartesian product. Each run is an ordinary
`devsim run` whose folder is named by a stable hash of its full configuration,
so the same run always lands in the same place::

    results/<sweep name>/
        sweep.json         the sweep: swept values, fixed fields, run hash -> swept values
        summary.csv        one row per run, model and epoch; every swept field is a column
        <hash>/            a run folder (config.json, history.csv, states_*.npz, figures)

A run is finished when ``<hash>/config.json`` exists: run folders are written
as ``<hash>.partial`` and renamed when done, so a killed sweep (Ctrl-C,
``kill -9``) loses no finished run and leaves nothing that looks finished.
Running the same sweep again skips finished runs (complete, or stopped on a
NaN loss) and retries failed ones. A run that raises is recorded as failed,
with its error, in ``<hash>/config.json`` and the sweep goes on.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import io as _io
import itertools
import json
import logging
import math
import re
import time
import tomllib
import traceback
from pathlib import Path

from devsim import io, options
from devsim.errors import ConfigError, SweepStopped

FINISHED = ("complete", "diverged")
SUMMARY_METRICS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds")


def sweepable() -> dict:
    """Run options a sweep may vary: ``{name: value type}`` (from the option table)."""
    from devsim.config import OPTION_FIELDS

    return {name: options.value_type(f) for name, f in OPTION_FIELDS.items() if options.spec_of(f).group != "output"}


def parse_value(field: str, text, option=None):
    """One value of `field` from CLI/TOML text (``"inf"`` for floats, ``128,64`` for hidden)."""
    from devsim.config import OPTION_FIELDS

    option = option or options.flag(field)
    spec = OPTION_FIELDS[field].metadata.get(options.SPEC) if field in OPTION_FIELDS else None
    if spec is None or spec.group == "output":
        raise ConfigError(f"{option}: not a run option that can be swept")
    try:
        value = options.parse(OPTION_FIELDS[field], text, option)
        if not isinstance(text, str) and value is not None:  # from TOML: a value of the option's type
            value = options.check(option, OPTION_FIELDS[field], value, scalar=True)
        return value
    except options.FieldError as exc:
        raise ConfigError(f"{option}: {exc.reason}") from None


def parse_list(field: str, text: str, option=None) -> list:
    """``"0.1,0.5,inf"`` -> ``[0.1, 0.5, inf]``. Hidden-layer lists are separated by ``/``
    (``--hidden 64/128/256,128``), everything else by commas."""
    parts = text.split("/") if field in ("hidden", "layer_lr") else text.split(",")
    return [parse_value(field, p.strip(), option) for p in parts if p.strip()]


def _canonical(value):
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, tuple):
        return list(value)
    return value


@dataclasses.dataclass
class Sweep:
    """A grid of runs.

    Args:
        name: sweep folder name.
        parameters: swept `RunConfig` fields -> list of values (the grid axes).
        fixed: `RunConfig` fields held fixed (``out`` and ``name`` are the sweep's).
        ties: fields that take another swept field's value instead of being an
            axis, e.g. ``{"ltd": "ltp"}`` sweeps symmetric devices (A_d = A_p).
    """

    name: str
    parameters: dict
    fixed: dict = dataclasses.field(default_factory=dict)
    ties: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not self.parameters:
            raise ConfigError("sweep: give at least one option with a list of values (e.g. --ltp 0.1,0.5,inf or --seeds 0,1,2)")
        from devsim.config import option_spec

        for key, values in self.parameters.items():
            if not values:
                raise ConfigError(f"{options.flag(key)}: the list of values is empty")
            spec = option_spec(key)
            seen = [_canonical(v) for v in values]
            twice = next((v for i, v in enumerate(seen) if v in seen[:i]), None)
            if twice is not None:
                raise ConfigError(f"{options.flag(key)}: the value {twice} is listed twice")
            if spec is not None and not spec.sweep and len(values) > 1:
                raise ConfigError(f"{options.flag(key)}: takes one value for the whole sweep, got {len(values)}")
        for field, source in self.ties.items():
            if source not in self.parameters:
                raise ConfigError(f"--tie: {field}={source}: {source} is not swept")
            if field in self.parameters or field in self.fixed:
                raise ConfigError(f"--tie: {field} is tied to {source}, so it cannot also be given")
            if sweepable().get(field) is not sweepable().get(source):
                raise ConfigError(f"--tie: {field} and {source} take different kinds of values")
        both = set(self.parameters) & set(self.fixed)
        if both:
            raise ConfigError(f"--{sorted(both)[0].replace('_', '-')}: given both as swept and fixed")
        io.check_name("--name", self.name)

    @classmethod
    def from_file(cls, path, overrides=None) -> "Sweep":
        """Read a TOML sweep file::

            name = "nonlinearity"
            [fixed]
            dataset = "mnist"
            epochs = 20
            [sweep]
            ltp = [0.1, 0.5, "inf"]
            seed = [0, 1, 2]
            [tie]              # optional: ltd takes ltp's value (symmetric devices)
            ltd = "ltp"
        """
        path = Path(path)
        try:
            spec = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"--file: no such file {path}") from None
        except IsADirectoryError:
            raise ConfigError(f"--file: {path} is a folder, not a TOML sweep file") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            reason = " ".join(str(exc).split())
            raise ConfigError(f"--file: {path} is not a readable TOML sweep file ({reason})") from None
        where = f"--file {path.name}"
        unknown = set(spec) - {"name", "fixed", "sweep", "tie"}
        if unknown:
            raise ConfigError(f"{where}: unknown table or key {sorted(unknown)[0]!r} (allowed: name, [fixed], [sweep], [tie])")
        for table in ("fixed", "sweep", "tie"):
            if not isinstance(spec.get(table, {}), dict):
                raise ConfigError(f"{where}: {table} must be a table ([{table}] with one option per line), "
                                  f"got {type(spec[table]).__name__}")
        name = spec.get("name", path.stem)
        if not isinstance(name, str):
            raise ConfigError(f"{where}: name must be text (a folder name), got {name!r}")

        def values(field, v):
            items = v if isinstance(v, list) else [v]
            if field == "hidden" and isinstance(v, list) and v and not any(isinstance(x, list) for x in v):
                items = [v]  # hidden = [128, 64]: one architecture; [[64], [128, 64]] sweeps two
            return [parse_value(field, x, f"{where}: {field}") for x in items]

        parameters = {k: values(k, v) for k, v in spec.get("sweep", {}).items()}
        fixed = {k: parse_value(k, v, f"{where}: {k}") for k, v in spec.get("fixed", {}).items()}
        fixed.update(overrides or {})
        ties = spec.get("tie", {})
        for field, source in ties.items():
            if not isinstance(source, str):
                raise ConfigError(f"{where}: [tie] {field} must name another option, e.g. ltd = \"ltp\", got {source!r}")
        return cls(name, parameters, fixed, dict(ties))

    def runs(self) -> list:
        """``[(hash, swept values, RunConfig), ...]`` in grid order. Validates every config."""
        from devsim.run import RunConfig

        keys = list(self.parameters)
        runs = []
        for combo in itertools.product(*(self.parameters[k] for k in keys)):
            swept = dict(zip(keys, combo))
            swept.update({field: swept[source] for field, source in self.ties.items()})
            config = RunConfig(**self.fixed, **swept)
            h = run_hash(config)
            same = next((other for other_hash, other, _ in runs if other_hash == h), None)
            if same is not None:
                show = lambda d: ", ".join(f"{k}={_canonical(v)}" for k, v in d.items())  # noqa: E731
                raise ConfigError(f"sweep: {show(swept)} and {show(same)} are the same run; list each configuration once")
            runs.append((h, swept, config))
        return runs

    def to_dict(self, runs) -> dict:
        return {
            "name": self.name,
            "parameters": {k: [_canonical(v) for v in vs] for k, vs in self.parameters.items()},
            "fixed": {k: _canonical(v) for k, v in self.fixed.items()},
            "ties": dict(self.ties),
            "runs": {h: {k: _canonical(v) for k, v in swept.items()} for h, swept, _ in runs},
        }


def run_hash(config) -> str:
    """Stable 12-hex-digit hash of everything that defines a run (not where it is written)."""
    d = {k: _canonical(v) for k, v in config.identity().items() if k not in ("out", "name")}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def run_status(folder: Path) -> str | None:
    """Status of a run folder: complete, diverged, failed, or None (not there)."""
    try:
        return json.loads((folder / "config.json").read_text()).get("status")
    except (OSError, ValueError):
        return None


def execute(config_dict: dict) -> dict:
    """Run one configuration (in this process, a local worker or a Dask worker).

    Never raises for a failing run: its error is written to the run folder and
    returned. Returns ``{"hash", "status", "seconds", "test_accuracy", "error"}``.
    """
    from devsim.quiet import quiet_stderr

    with quiet_stderr():  # TensorFlow's start-up chatter in worker processes
        from devsim.run import RunConfig, run

    start = time.perf_counter()
    folder = Path(config_dict["out"]) / config_dict["name"]
    result = {"hash": config_dict["name"], "status": None, "seconds": 0.0, "test_accuracy": None, "error": None}
    try:
        config = RunConfig(**config_dict)  # validated again here: a device file may have gone since
        with contextlib.redirect_stdout(_io.StringIO()):
            run(config, echo=lambda line: None, warn=lambda line: None)
        record = json.loads((folder / "config.json").read_text())
        result["status"] = record["status"]
        result["test_accuracy"] = record["final"].get("device", {}).get("test_accuracy")
    except Exception as exc:  # recorded, and the sweep goes on
        error = " ".join(f"{type(exc).__name__}: {exc}".split())
        _record_failure(folder, config_dict, error, traceback.format_exc())
        result.update(status="failed", error=error)
    result["seconds"] = time.perf_counter() - start
    return result


def _record_failure(folder: Path, config_dict: dict, error: str, trace: str):
    """Write a failed run's config.json (status failed, the error); stop the sweep if even that fails."""
    partial = folder.with_name(folder.name + ".partial")
    try:
        partial.mkdir(parents=True, exist_ok=True)
        io.write_json(partial / "config.json", {
            "devsim_run": {k: _canonical(v) for k, v in config_dict.items()},
            "status": "failed", "error": error, "traceback": trace,
        })
        io.replace_dir(partial, folder)
    except OSError as exc:
        raise SweepStopped(f"cannot record the failure of run {folder.name} in {folder.parent} "
                           f"({exc.strerror or exc}); the sweep stops here") from None


def write_summary(sweep_dir: Path, runs) -> Path:
    """summary.csv from every finished run's history (atomic): one row per run, model and epoch."""
    keys = list(dict.fromkeys(k for _, swept, _ in runs for k in swept))
    rows = []
    for h, swept, _ in runs:
        folder = sweep_dir / h
        status = run_status(folder)
        if status is None:
            continue
        base = {"run": h, **{k: _canonical(v) for k, v in swept.items()}}
        history = folder / "history.csv"
        if not history.exists():
            rows.append({**base, "status": status})
            continue
        with open(history) as f:
            for r in csv.DictReader(f):
                rows.append({**base, "model": r["model"], "epoch": r["epoch"], **{m: r[m] for m in SUMMARY_METRICS}, "status": status})
    columns = ["run", *keys, "model", "epoch", *SUMMARY_METRICS, "status"]
    buf = _io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    io.write_text(sweep_dir / "summary.csv", buf.getvalue())
    return sweep_dir / "summary.csv"


def _fmt_seconds(s):
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def run_sweep(
    sweep: Sweep, out="results", workers: int = 1, scheduler: str | None = None, stack: int = 8, echo=print, warn=None
) -> Path:
    """Run every unfinished run of the sweep and write sweep.json and summary.csv.

    Args:
        sweep: the grid.
        out: results root; the sweep goes to ``<out>/<sweep.name>/``.
        workers: local processes (1: in this process).
        scheduler: address of a running Dask scheduler (``tcp://host:8786``);
            the workers must have devsim installed and see ``out``.
        stack: train up to this many runs that differ only in the device
            curvature as one stacked model (`devsim.stacked`; same results,
            a fraction of the time). 1 trains every run alone.
        echo: progress lines.
        warn: warnings (a dataset fallback is reported once, here).

    Returns:
        The sweep folder.
    """
    from devsim.data import load_dataset

    runs = sweep.runs()
    if workers < 1:
        raise ConfigError(f"--workers: must be an integer >= 1, got {workers}")
    if stack < 1:
        raise ConfigError(f"--stack: must be an integer >= 1, got {stack}")
    for dataset, data_dir in sorted({(c.dataset, c.data_dir or "") for _, _, c in runs}):
        load_dataset(dataset, data_dir or None, warn=warn or echo)  # fails (or warns) once, before anything runs
    sweep_dir = Path(out) / sweep.name
    io.check_writable(Path(out), "--out")
    with _connect(workers, scheduler) as client, io.folder_lock(Path(out) / f".{sweep.name}.lock", "--out", "sweep"):
        sweep_dir.mkdir(exist_ok=True)
        io.write_json(sweep_dir / "sweep.json", sweep.to_dict(runs))
        todo = [(h, swept, c) for h, swept, c in runs if run_status(sweep_dir / h) not in FINISHED]
        echo(f"sweep {sweep.name}: {len(runs)} runs, {len(runs) - len(todo)} already finished, {len(todo)} to run "
             f"-> {sweep_dir}/")
        groups = [
            [dict(c.to_dict(), out=str(sweep_dir), name=h) for h, _, c in group]
            for group in group_runs(todo, stack)
        ]
        if stack > 1 and len(todo) > 1:
            from devsim import backends

            if backends.name() != "tensorflow" and _could_stack(todo):
                echo(f"note: --stack: stacked training needs KERAS_BACKEND=tensorflow; on {backends.name()} every run "
                     "trains alone")
        if any(len(g) > 1 for g in groups):
            echo(f"training {sum(len(g) for g in groups if len(g) > 1)} runs stacked, in {sum(len(g) > 1 for g in groups)} models")
        start, done = time.perf_counter(), len(runs) - len(todo)
        swept_of = {h: swept for h, swept, _ in runs}
        stream = (r for group_results in _results(groups, client) for r in group_results)
        for result in _until_stopped(stream, echo, lambda: done - (len(runs) - len(todo)), len(todo)):
            done += 1
            elapsed = time.perf_counter() - start
            finished_here = done - (len(runs) - len(todo))
            eta = elapsed / finished_here * (len(runs) - done)
            what = " ".join(f"{k}={_canonical(v)}" for k, v in swept_of[result["hash"]].items())
            outcome = (
                f"test {result['test_accuracy']:.4f}" if result["test_accuracy"] is not None else result["status"]
            ) + (f" ({result['error']})" if result["error"] else "")
            echo(f"[{done}/{len(runs)}] {what}: {outcome}  {result['seconds']:.1f} s | elapsed {_fmt_seconds(elapsed)}, "
                 f"left ~{_fmt_seconds(eta)}")
            write_summary(sweep_dir, runs)
        write_summary(sweep_dir, runs)
    return sweep_dir


def execute_group(payloads: list) -> list:
    """Run a group of configurations: stacked into one model when there are several
    (see `devsim.stacked`), else one by one. Returns one `execute` result per run."""
    if len(payloads) == 1:
        return [execute(payloads[0])]
    from devsim.quiet import quiet_stderr

    with quiet_stderr():
        from devsim.run import RunConfig
        from devsim.stacked import run_stacked

    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(_io.StringIO()):
            folders = run_stacked([RunConfig(**p) for p in payloads], echo=lambda line: None)
    except Exception:  # let every run fail (or succeed) on its own
        return [execute(p) for p in payloads]
    seconds = (time.perf_counter() - start) / len(payloads)
    results = []
    for folder in folders:
        record = json.loads((folder / "config.json").read_text())
        results.append({"hash": folder.name, "status": record["status"], "seconds": seconds, "error": None,
                        "test_accuracy": record["final"].get("device", {}).get("test_accuracy")})
    return results


def _could_stack(todo) -> bool:
    """Whether two of the runs could train stacked on TensorFlow (`devsim.stacked.compatible_key`)."""
    from devsim.stacked import compatible_key

    keys = [k for k in (compatible_key(item[2]) for item in todo) if k is not None]
    return len(keys) != len(set(keys))


def group_runs(todo, stack: int) -> list:
    """Groups of runs to train together: up to `stack` runs that share a `stack_key`."""
    if stack <= 1:
        return [[item] for item in todo]
    from devsim.stacked import stack_key

    groups = {}
    for item in todo:
        key = stack_key(item[2])
        groups.setdefault(key if key is not None else ("alone", item[0]), []).append(item)
    return [members[i:i + stack] for members in groups.values() for i in range(0, len(members), stack)]


def _until_stopped(results, echo, finished, total):
    """Pass results on; when the sweep must stop (`SweepStopped`), say what it finished first."""
    try:
        yield from results
    except SweepStopped as exc:
        echo(f"sweep stopped after {finished()} of {total} runs to do; finished runs are kept")
        raise exc from None


_SCHEDULER = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://[^\s/:]+(:\d{1,5})?/?$")


@contextlib.contextmanager
def _connect(workers, scheduler):
    """A Dask client for local processes or a running scheduler (None: run in this process).

    Connects before anything is written, so a bad address or a missing
    dask.distributed is a one-line error that leaves no sweep folder behind.
    """
    if scheduler is None and workers == 1:
        yield None
        return
    option = "--scheduler" if scheduler is not None else "--workers"
    if scheduler is not None and not _SCHEDULER.match(scheduler):
        raise ConfigError(f"--scheduler: {scheduler!r} is not a scheduler address such as tcp://host:8786")
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError(f"{option}: running on several processes needs dask.distributed; "
                          "pip install 'devsim[cluster]' (or run with --workers 1)") from None
    with contextlib.ExitStack() as stack:
        if scheduler is not None:
            _reachable(scheduler)
            try:
                client = stack.enter_context(Client(scheduler, timeout="10s"))
            except (OSError, TimeoutError, ValueError) as exc:
                raise ConfigError(f"--scheduler: cannot connect to {scheduler} ({' '.join(str(exc).split())})") from None
        else:
            from devsim.quiet import quiet_logs

            with quiet_logs():
                cluster = stack.enter_context(
                    LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                 silence_logs=logging.ERROR)
                )
            client = stack.enter_context(Client(cluster))
        yield client


def _reachable(scheduler):
    """Fail at once (not after the client's timeout) when nothing listens at a tcp:// address."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(scheduler)
    if parts.scheme != "tcp" or not parts.hostname:
        return
    try:
        with socket.create_connection((parts.hostname, parts.port or 8786), timeout=5):
            pass
    except OSError as exc:
        raise ConfigError(f"--scheduler: cannot connect to {scheduler} ({exc.strerror or exc})") from None


def _results(groups, client):
    """Yield lists of `execute` results as groups of runs finish, wherever they run."""
    if not groups:
        return
    if client is None:
        for group in groups:
            yield execute_group(group)
        return
    from distributed import as_completed

    futures = [
        client.submit(execute_group, group, key=f"devsim-runs-{group[0]['name']}-{len(group)}", pure=False, retries=2)
        for group in groups
    ]
    for future in as_completed(futures):
        result = future.result()
        # Forget the result on the cluster at once: a worker that dies while it still holds a fetched
        # result would otherwise make the scheduler recompute it, re-running finished runs behind our back.
        future.cancel()
        yield result
