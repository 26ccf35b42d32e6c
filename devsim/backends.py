"""The Keras backend devsim runs on: TensorFlow, JAX or PyTorch (``KERAS_BACKEND``).

`DeviceOptimizer` and its tiles are written in ``keras.ops`` and run unchanged
on every Keras 3 backend; this module holds the few places where backends
differ:

- `counter_dtype`: the pulse and step counters are int64, except on JAX
  without ``jax_enable_x64`` (the default), where they are int32 (JAX
  truncates int64 to int32 there; the counters of one epoch fit easily, and
  they are reset every epoch by `ProgramDevices`).
- `hash_dtype`: the counter-based noise (`devsim.noise`) hashes in uint32 on
  TensorFlow and JAX, and in int64 masked to 32 bits on PyTorch (which has
  little uint32 support); the draws are the same bits.
- `stateful_compile`: a function that reads and assigns Keras variables,
  compiled: ``tf.function(jit_compile=True)`` on TensorFlow, ``jax.jit`` over
  a stateless version on JAX (variable values in, new values out, run under
  ``keras.StatelessScope``), eager on PyTorch.
- `require_tensorflow`: the parts that need TensorFlow (the compiled epoch
  loop, a ``tf.while_loop``; stacked training, bit-identical to runs alone
  only under TensorFlow's XLA) refuse other backends in one line naming the
  option (`devsim.config.RunConfig` checks the run options the same way, and
  refuses the IO periphery on JAX: its per-call noise counter cannot advance
  inside JAX's stateless train step).
- `wide_vector_flags`, `use_wide_vectors`: on a CPU with AVX-512, XLA's CPU
  compiler is asked for 512-bit vectors (``import devsim`` does it, before a
  backend starts; XLA's default is 256-bit code).
- `keep_freed_memory`: glibc's malloc keeps the memory of freed arrays for the
  next step instead of returning it to the system (``import devsim`` does it).
- `backend_versions`, `accelerator`: what ran (recorded in every result file).
"""

from __future__ import annotations

import importlib
import importlib.util
import os

BACKENDS = ("tensorflow", "jax", "torch")
"""The Keras 3 backends devsim supports (``KERAS_BACKEND``)."""

_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def name() -> str:
    """The Keras backend in use: ``"tensorflow"``, ``"jax"`` or ``"torch"``."""
    import keras

    return keras.backend.backend()


def installed() -> list:
    """The backends of `BACKENDS` whose package is installed (without importing them)."""
    return [b for b in BACKENDS if importlib.util.find_spec(_MODULES[b]) is not None]


def _jax_x64() -> bool:
    import jax

    return bool(jax.config.jax_enable_x64)


def counter_dtype() -> str:
    """The dtype of devsim's integer counters: ``"int64"``, or ``"int32"`` on JAX without x64."""
    if name() == "jax" and not _jax_x64():
        return "int32"
    return "int64"


def hash_dtype() -> str:
    """The integer dtype of the noise hash: ``"uint32"``, or ``"int64"`` (masked to 32 bits) on PyTorch."""
    return "int64" if name() == "torch" else "uint32"


def require_tensorflow(option: str, what: str):
    """Refuse a TensorFlow-only feature on another backend.

    Args:
        option: the option that asks for it (``"--train-loop"``), named first in the message.
        what: what it is (``"the compiled loop (a tf.while_loop)"``).

    Raises:
        ConfigError: ``"<option>: <what> needs KERAS_BACKEND=tensorflow (the backend is jax)"``.
    """
    backend = name()
    if backend != "tensorflow":
        from devsim.errors import ConfigError

        raise ConfigError(f"{option}: {what} needs KERAS_BACKEND=tensorflow (the backend is {backend})")


def stateful_compile(fn, variables, jit: bool = True):
    """``fn`` (which reads and assigns Keras variables) compiled by the backend.

    Args:
        fn: a function of tensors (or None) that reads and assigns Keras variables
            and returns nothing.
        variables: a function returning every Keras variable ``fn`` reads or
            assigns (JAX: they become arguments and results of the compiled
            function; a variable left out would be frozen at its first value).
        jit: compile (TensorFlow: with XLA; JAX: ``jax.jit``); False: eager.

    Returns:
        A callable with ``fn``'s arguments. TensorFlow: ``tf.function(jit_compile=True)``.
        JAX: ``jax.jit`` of the stateless function (variable values in, new values out,
        under ``keras.StatelessScope``), then the results assigned; inside a
        stateless scope already (the Keras JAX trainer's jitted step) ``fn`` runs
        as it is, traced into that step. PyTorch: ``fn``, eager, under ``torch.no_grad()``
        (device updates are not differentiated; the Keras torch trainer applies
        optimizers under it too).
    """
    backend = name()
    if backend == "torch":
        return _no_grad(fn)
    if not jit:
        return fn
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True, autograph=False)
    return _JaxStateful(fn, variables)


def _no_grad(fn):
    import torch

    def call(*args):
        with torch.no_grad():
            return fn(*args)

    return call


def no_grad():
    """A context without gradient recording: ``torch.no_grad()`` on PyTorch, else a no-op."""
    if name() == "torch":
        import torch

        return torch.no_grad()
    import contextlib

    return contextlib.nullcontext()


class _JaxStateful:
    """`stateful_compile` on JAX: ``jax.jit`` over values, with Keras variables assigned outside."""

    def __init__(self, fn, variables):
        self.fn, self.variables = fn, variables
        self._jitted = None

    def __call__(self, *args):
        import keras
        from keras.src.backend.common.stateless_scope import in_stateless_scope

        if in_stateless_scope():  # already traced by the caller's jit (the trainer's step)
            return self.fn(*args)
        import jax

        variables = _unique(self.variables())
        if self._jitted is None or self._jitted[0] != [id(v) for v in variables]:
            def pure(values, args):
                with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
                    self.fn(*args)
                out = []
                for v, value in zip(variables, values):
                    new = scope.get_current_value(v)
                    out.append(value if new is None else new)
                return out

            self._jitted = ([id(v) for v in variables], jax.jit(pure))
        new = self._jitted[1]([v.value for v in variables], args)
        for v, value in zip(variables, new):
            v.assign(value)


def _unique(variables):
    seen, out = set(), []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def backend_module_version(backend: str | None = None) -> str:
    """The version of the backend's package (``tensorflow``, ``jax`` or ``torch``)."""
    module = importlib.import_module(_MODULES[backend or name()])
    return module.__version__


def accelerator() -> str:
    """Which kind of device the backend computes on by default: ``"gpu"`` or ``"cpu"``."""
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    if backend == "jax":
        import jax

        return "gpu" if jax.default_backend() in ("gpu", "cuda", "rocm") else "cpu"
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def threads() -> int | None:
    """The threads the backend computes on: TensorFlow's intra-op pool size, PyTorch's
    ``torch.get_num_threads()``; None for the backend's default (all cores; JAX always)."""
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.config.threading.get_intra_op_parallelism_threads() or None
    if backend == "torch":
        import torch

        return torch.get_num_threads()
    return None


def set_threads(n: int | None) -> str | None:
    """Let the backend use ``n`` threads for a run's operations (None: leave it as it is).

    TensorFlow: the intra-op pool (which XLA's CPU runtime runs its kernels on); it can only be set
    before TensorFlow runs its first operation in the process. PyTorch: ``torch.set_num_threads``.
    JAX: not settable once imported (``XLA_FLAGS``). `threads` tells what is in effect.

    Returns:
        None, or a one-line note saying why the request could not be applied.
    """
    if n is None or n == threads():
        return None
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(n))
        except RuntimeError:  # the context exists: the pool is fixed for this process
            return (f"--threads {n} not applied: TensorFlow already runs with {threads() or 'all cores as'} "
                    "intra-op threads in this process")
        return None
    if backend == "torch":
        import torch

        torch.set_num_threads(int(n))
        return None
    return f"--threads {n} not applied: JAX's CPU threads are fixed at import"


WIDE_VECTORS = "--xla_cpu_prefer_vector_width=512"
"""The XLA flag `use_wide_vectors` adds to ``XLA_FLAGS`` on AVX-512 CPUs."""


def wide_vector_flags(flags: str, avx512: bool) -> str:
    """``XLA_FLAGS`` with `WIDE_VECTORS` appended, if ``avx512`` and ``flags`` do not choose a width.

    XLA's CPU compiler emits 256-bit vector code unless told otherwise. devsim's
    batch-mode device update is one fused elementwise program of about 150
    vector operations per weight (counter hashes, stochastic rounding, the
    curve, the inverse normal CDF of the C2C draws); 512 bits wide a training
    epoch takes 8-15 % less on an AVX-512 Xeon, with the same results bit for
    bit (README, Performance: "XLA's vector width"). A width already in
    ``flags`` (``--xla_cpu_prefer_vector_width=256`` restores XLA's default) is kept.

    Args:
        flags: the current ``XLA_FLAGS`` ("" when unset).
        avx512: whether the CPU has AVX-512F.
    """
    if not avx512 or "xla_cpu_prefer_vector_width" in flags:
        return flags
    return f"{flags} {WIDE_VECTORS}".strip()


def _cpu_has_avx512() -> bool:
    try:  # numpy's own runtime CPU-feature detection
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:
        return False
    return bool(__cpu_features__.get("AVX512F"))


def use_wide_vectors() -> None:
    """Set ``XLA_FLAGS`` per `wide_vector_flags` for this CPU. XLA reads the variable when it
    first compiles (TensorFlow) or starts its CPU client (JAX): ``import devsim`` calls this,
    so it applies unless a backend has compiled before devsim was imported."""
    flags = os.environ.get("XLA_FLAGS", "")
    new = wide_vector_flags(flags, _cpu_has_avx512())
    if new != flags:
        os.environ["XLA_FLAGS"] = new


MALLOC_KEPT = False
"""Whether `keep_freed_memory` applied its settings in this process (set by ``import devsim``)."""

MALLOC_SETTINGS = {"M_TRIM_THRESHOLD": (-1, 1 << 30), "M_TOP_PAD": (-2, 64 << 20), "M_MMAP_THRESHOLD": (-3, 32 << 20)}
"""`keep_freed_memory`'s ``mallopt`` settings, ``{name: (glibc's parameter number, bytes)}``: free memory kept
up to 1 GiB at the top of the heap, 64 MiB more taken per growth, and blocks below 32 MiB (glibc's largest
threshold) from the heap rather than from fresh ``mmap`` s."""

_MALLOC_VARIABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_ARENA_MAX")


def keep_freed_memory() -> bool:
    """Tell glibc's malloc (`MALLOC_SETTINGS`) to keep freed memory for reuse. Returns whether it applied.

    An XLA step allocates its temporary arrays and frees them when it ends; glibc returns freed
    memory above 128 KiB at the top of its heap, and arrays of several MB that it served by
    ``mmap``, to the system, so the next step takes page faults on fresh pages for every one of them
    (measured: 784-1400-1400-10 on JAX, one core, 2.4-2.5 s per epoch with these settings, 2.6-3.6 s
    without, varying from process to process). Not on other C libraries (musl, macOS, Windows), and
    not when the environment sets one of glibc's ``MALLOC_*`` tunables itself.
    """
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(v in os.environ for v in _MALLOC_VARIABLES) or "GLIBC_TUNABLES" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(number, value) == 1 for number, value in MALLOC_SETTINGS.values())


def backend_versions() -> dict:
    """``{"backend": ..., "<backend package>": version, "accelerator": "cpu" | "gpu", "xla_flags": ...}``
    for result files (``XLA_FLAGS`` as the process had it), with the versions of the other installed
    backends' packages too (read from their metadata, not imported)."""
    from importlib import metadata

    backend = name()
    out = {"backend": backend, _MODULES[backend]: backend_module_version(backend), "accelerator": accelerator(),
           "xla_flags": os.environ.get("XLA_FLAGS", ""), "malloc_keeps_freed_memory": MALLOC_KEPT}
    for other in BACKENDS:
        if _MODULES[other] not in out:
            try:
                out[_MODULES[other]] = metadata.version(_MODULES[other])
            except metadata.PackageNotFoundError:
                pass
    return out
