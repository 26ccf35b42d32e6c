"""Every Keras 3 backend trains the same device model to the same numbers as TensorFlow.

Each backend runs tests/backend_worker.py in its own process (``KERAS_BACKEND``
must be set before Keras is imported), from the root of this checkout so that
it imports this devsim; a backend that is not installed is skipped. The
results (losses, pulse counts per epoch and layer, kernels, every tile's state,
noisy device reads) must equal TensorFlow's within float32 round-off: the
counter-based draws are the same bits on every backend, the float math differs
in the last bits (a different compiler, or none).
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "backend_worker.py"
FAST = ("sgd", "ttv2", "epoch")
SLOW = ("c-ttv2", "agad", "mixed-precision", "zero-shift", "differential")
_RESULTS = {}


def need(backend):
    """Skip unless the backend's package is installed (found without importing it)."""
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")


def env(backend):
    return {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}


def start(backend, cases, **environ):
    return subprocess.Popen([sys.executable, str(WORKER), *cases], cwd=ROOT, env={**env(backend), **environ},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process, backend):
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, f"{backend} worker failed:\n{err[-3000:]}"
    result = json.loads(out)
    assert result["backend"] == backend and result["versions"]["backend"] == backend
    return result


def results(backends, cases, extra=None):
    """The worker's results per backend (run concurrently; cached per process); ``extra``: further
    worker arguments per backend (``refusals``)."""
    extra = extra or {}
    keys = {b: (b, cases + tuple(extra.get(b, ()))) for b in backends}
    running = {b: start(b, keys[b][1]) for b in backends if keys[b] not in _RESULTS}
    for b, process in running.items():
        _RESULTS[keys[b]] = finish(process, b)
    return {b: _RESULTS[keys[b]] for b in backends}


def assert_same(reference, other, backend):
    """Every number of ``other`` equals ``reference``'s: integers exactly, floats within float32 round-off."""
    for case, ref in reference["cases"].items():
        got = other["cases"][case]
        where = f"{backend} {case}"
        assert got["steps"] == ref["steps"] > 0, where
        assert got["pulses"] == ref["pulses"], f"{where}: pulse counts"
        assert all(sum(v) > 0 for k, v in ref["pulses"].items() if "applied" in k), f"{where}: no pulses (vacuous test)"
        np.testing.assert_allclose(got["loss"], ref["loss"], rtol=2e-6, err_msg=f"{where}: loss")
        for layer, w in ref["kernels"].items():
            np.testing.assert_allclose(got["kernels"][layer], w, atol=2e-6, err_msg=f"{where}: kernel {layer}")
        for layer, state in ref["states"].items():
            assert set(got["states"][layer]) == set(state), where
            for key, value in state.items():
                np.testing.assert_allclose(np.asarray(got["states"][layer][key], np.float64), np.asarray(value, np.float64),
                                           atol=5e-6, err_msg=f"{where}: {key} of {layer}")
        for key in ("read", "evaluate", "reads"):
            assert (key in got) == (key in ref), f"{where}: {key}"
        if "read" in ref:
            assert got["reads"] == ref["reads"] > 0, where
            for layer, w in ref["read"].items():
                np.testing.assert_allclose(got["read"][layer], w, atol=2e-6, err_msg=f"{where}: noisy read of {layer}")
        if "evaluate" in ref:
            np.testing.assert_allclose(got["evaluate"], ref["evaluate"], rtol=2e-6, err_msg=f"{where}: evaluation")


def check_reference(ref):
    """The TensorFlow reference is not vacuous: the devices moved, batch updates learned, the
    steps were counted, and the noisy read drew fresh read noise."""
    for case in FAST:
        r = ref["cases"][case]
        assert r["steps"] == (16 if case != "epoch" else 2), case  # 8 batches per epoch, or one programming
        if case != "epoch":  # (epoch updates: float steps, then programmed; the loss need not fall)
            assert r["loss"][-1] < r["loss"][0], case
    sgd = ref["cases"]["sgd"]
    read = np.asarray(sgd["read"]["hidden"])
    assert 0 < np.mean(np.abs(read - np.asarray(sgd["kernels"]["hidden"]))) < 0.05


def check_refusals(refused, backend):
    """TensorFlow-only parts refuse this backend in one line naming the option; the rest runs."""
    for what, option in (("compiled_loop", "--train-loop: "), ("run_stacked", "--stack: "),
                         ("--train-loop", "--train-loop: "), ("--protocol", "--protocol: ")):
        message = refused[what]
        assert message.startswith(option) and "KERAS_BACKEND=tensorflow" in message and "\n" not in message, what
        assert f"the backend is {backend}" in message, what
    assert refused["neurosim_with_keras_loop"] == "keras"  # the protocol itself runs with Keras fit
    assert refused["stack_key"] is None  # sweeps train every run alone
    periphery = ("analog_dense", "--periphery", "--out-noise")
    if backend == "jax":  # the IO periphery's per-call counter cannot advance in JAX's stateless step
        for what in periphery:
            message = refused[what]
            assert "KERAS_BACKEND=tensorflow or torch" in message and "\n" not in message, what
            assert message.startswith(what + ": " if what.startswith("--") else "AnalogDense: "), what
    else:  # torch's eager step advances it
        assert all(refused[what] is None for what in periphery)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_backend_matches_tensorflow_and_refuses_tensorflow_only_parts(backend):
    need("tensorflow")
    need(backend)
    both = results(("tensorflow", backend), FAST, extra={backend: ("refusals",)})
    check_reference(both["tensorflow"])
    assert_same(both["tensorflow"], both[backend], backend)
    check_refusals(both[backend]["refusals"], backend)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_backend_matches_tensorflow_every_algorithm(backend):
    need("tensorflow")
    need(backend)
    both = results(("tensorflow", backend), SLOW)
    assert_same(both["tensorflow"], both[backend], backend)


def test_wide_vector_flags_adds_512_bits_only_on_avx512_and_keeps_a_chosen_width():
    from devsim.backends import WIDE_VECTORS, wide_vector_flags

    assert WIDE_VECTORS == "--xla_cpu_prefer_vector_width=512"
    assert wide_vector_flags("", avx512=True) == WIDE_VECTORS
    assert wide_vector_flags("--xla_dump_to=/tmp/x", avx512=True) == "--xla_dump_to=/tmp/x " + WIDE_VECTORS
    assert wide_vector_flags("", avx512=False) == ""
    assert wide_vector_flags("--xla_cpu_prefer_vector_width=256", avx512=True) == "--xla_cpu_prefer_vector_width=256"


def test_import_devsim_sets_xla_flags_for_this_cpu():
    from numpy._core._multiarray_umath import __cpu_features__

    code = "import os, devsim; print(os.environ.get('XLA_FLAGS', ''))"
    unset = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=unset, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ("--xla_cpu_prefer_vector_width=512" if __cpu_features__["AVX512F"] else "")
    mine = {**unset, "XLA_FLAGS": "--xla_cpu_prefer_vector_width=256"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=mine, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "--xla_cpu_prefer_vector_width=256"


@pytest.mark.parametrize("backend", ["tensorflow", pytest.param("jax", marks=pytest.mark.slow)])
def test_xla_vector_width_changes_no_number(backend):
    """XLA's 256- and 512-bit code of the device update (stochastic pulses, C2C, D2D, read noise) give the same bits."""
    need(backend)
    widths = {w: start(backend, ("sgd",), XLA_FLAGS=f"--xla_cpu_prefer_vector_width={w}") for w in (256, 512)}
    narrow, wide = (finish(widths[w], backend) for w in (256, 512))
    assert narrow["versions"]["xla_flags"] == "--xla_cpu_prefer_vector_width=256"
    assert wide["versions"]["xla_flags"] == "--xla_cpu_prefer_vector_width=512"
    a, b = narrow["cases"]["sgd"], wide["cases"]["sgd"]
    assert a["pulses"] == b["pulses"] and a["loss"] == b["loss"] and a["read"] == b["read"]
    assert a["kernels"] == b["kernels"] and a["states"] == b["states"]
    assert sum(sum(v) for k, v in a["pulses"].items() if "applied" in k) > 0


REFUSED = [
    ("jax", ["--train-loop", "compiled"], "--train-loop: "),
    ("torch", ["--protocol", "neurosim"], "--protocol: "),
]


@pytest.mark.parametrize("backend, args, option", REFUSED, ids=[" ".join([b, *a]) for b, a, _ in REFUSED])
def test_cli_refuses_tensorflow_only_options_in_one_line_exit_2(backend, args, option, tmp_path):
    need(backend)
    result = subprocess.run([sys.executable, "-m", "devsim.cli", "run", "--epochs", "1", *args, "--out", str(tmp_path)],
                            cwd=ROOT, env=env(backend), capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and lines[0].startswith(f"Error: {option}"), result.stderr[-2000:]
    assert "KERAS_BACKEND=tensorflow" in lines[0] and f"the backend is {backend}" in lines[0]
    assert not any(tmp_path.iterdir())  # nothing written


def test_import_devsim_keeps_freed_memory_on_glibc_unless_the_environment_tunes_malloc():
    import platform

    code = "import devsim, json; from devsim import backends; print(json.dumps(backends.backend_versions()['malloc_keeps_freed_memory']))"
    plain = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**plain, "KERAS_BACKEND": "tensorflow"},
                         capture_output=True, text=True, check=True)
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert json.loads(out.stdout) is glibc
    tuned = {**plain, "KERAS_BACKEND": "tensorflow", "MALLOC_TRIM_THRESHOLD_": "131072"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=tuned, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) is False  # the user's own setting is left alone
