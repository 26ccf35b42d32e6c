"""Keras and devsim workers (run in devsim's venv, with PYTHONPATH at the devsim checkout).

    keras       float Keras, model.fit
    devsim      devsim.DeviceOptimizer(SGD, ExpDevice(0.8, 0.8, 101), pulses="stochastic", update="batch")
    devsim-c2c  the same with c2c=0.02
    tf-step     no Keras: a tf.function(jit_compile=True) train step called from a Python loop
    tf-epoch    no Keras: the whole epoch (tf.while_loop over the batches) as one XLA program,
                the floor of TF on this CPU
    keras-epoch, devsim-epoch, devsim-c2c-epoch
                the Keras model and optimizer (float SGD, or devsim's DeviceOptimizer), trained
                by such a whole-epoch XLA program instead of model.fit (a prototype: what
                devsim could reach with its own epoch loop)

Each takes the Keras settings --jit (auto: Keras's default, which is no XLA
on a CPU-only machine), --steps-per-execution (0: the whole epoch) and
--data-pipeline (numpy: arrays to fit, Keras's default; tfdata: a tf.data
pipeline with prefetch). One process trains one tool on one network; see
benchmarks/peers.py.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

TOOLS = ("keras", "devsim", "devsim-c2c", "tf-step", "tf-epoch", "keras-epoch", "devsim-epoch", "devsim-c2c-epoch")
DEVICE = dict(a_p=0.8, a_d=0.8, states=101)  # benchmarks/run.py's device
C2C = 0.02


def build(args):
    import keras

    keras.utils.set_random_seed(args.seed)
    layers = [keras.Input((28, 28)), keras.layers.Flatten()]
    for units in common.hidden_sizes(args.net):
        layers.append(keras.layers.Dense(units, activation="relu", use_bias=False))
    layers.append(keras.layers.Dense(10, activation="softmax", use_bias=False))
    model = keras.Sequential(layers)
    optimizer, callbacks = keras.optimizers.SGD(args.lr), []
    if not args.tool.startswith("keras"):
        import devsim

        device = devsim.ExpDevice(**DEVICE, c2c=C2C if args.tool.startswith("devsim-c2c") else 0.0)
        optimizer = devsim.DeviceOptimizer(optimizer, device, pulses="stochastic", update="batch", seed=args.seed,
                                           sparse_update=args.sparse_update == "true")
        callbacks = [devsim.ProgramDevices()]
    return model, optimizer, callbacks


def dataset(x, y, batch, seed):
    """tf.data: shuffled indices, one gather per batch, prefetched (what fit does for arrays, minus its adapter)."""
    import tensorflow as tf

    xt, yt = tf.constant(x), tf.constant(y)
    return (tf.data.Dataset.range(len(y)).shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
            .batch(batch).map(lambda i: (tf.gather(xt, i), tf.gather(yt, i)))
            .prefetch(tf.data.AUTOTUNE))


def plain_tf(args, x, y):
    """tf-step / tf-epoch: the same network and SGD in plain TensorFlow, timed the same way."""
    import numpy as np
    import tensorflow as tf

    sizes = [int(s) for s in args.net.split("-")]
    init = tf.keras.initializers.GlorotUniform(seed=args.seed)
    weights = [tf.Variable(init((i, o))) for i, o in zip(sizes[:-1], sizes[1:])]
    n, b, lr = len(y), args.batch, args.lr
    steps = n // b
    x_all, y_all = tf.constant(x.reshape(n, -1)), tf.constant(y.astype("int32"))

    def loss_of(xb, yb):
        h = xb
        for w in weights[:-1]:
            h = tf.nn.relu(h @ w)
        logits = h @ weights[-1]
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(yb, logits))

    def step(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_of(xb, yb)
        for w, g in zip(weights, tape.gradient(loss, weights)):
            w.assign_sub(lr * g)
        return loss

    step_fn = tf.function(step, jit_compile=True)

    @tf.function(jit_compile=True)
    def epoch_fn(xs, ys, perm, count):
        def body(i, total):
            idx = tf.slice(perm, [i * b], [b])
            return i + 1, total + step(tf.gather(xs, idx), tf.gather(ys, idx))

        _, total = tf.while_loop(lambda i, _: i < count, body, (tf.constant(0), tf.constant(0.0)))
        return total / tf.cast(count, tf.float32)

    rng = np.random.default_rng(args.seed)

    def train_epoch(count=steps):
        perm = tf.constant(rng.permutation(n).astype("int32"))
        if args.tool == "tf-epoch":
            return float(epoch_fn(x_all, y_all, perm, tf.constant(count)))
        xs, ys = tf.gather(x_all, perm), tf.gather(y_all, perm)
        total = 0.0
        for i in range(count):
            total += float(step_fn(xs[i * b:(i + 1) * b], ys[i * b:(i + 1) * b]))
        return total / count

    with common.Clock() as warm:
        for _ in range(args.warmup_epochs):
            train_epoch()
        if not args.warmup_epochs:
            train_epoch(min(steps, args.warmup_steps))
    seconds, cpu, losses = [], [], []
    for _ in range(args.epochs):
        with common.Clock() as c:
            losses.append(train_epoch())
        seconds.append(c.wall)
        cpu.append(c.cpu)
    h = x_all
    for w in weights[:-1]:
        h = tf.nn.relu(h @ w)
    accuracy = float(np.mean(np.argmax((h @ weights[-1]).numpy(), 1) == y))
    return {"epoch_seconds": seconds, "epoch_cpu_seconds": cpu, "warmup_seconds": warm.wall, "loss": losses,
            "train_accuracy": accuracy, "jit_compile": "True", "steps_per_execution": steps if args.tool == "tf-epoch" else 1}


def epoch_loop(args, x, y):
    """keras-epoch / devsim-epoch: a Keras model and optimizer trained by one XLA program per epoch."""
    import keras
    import numpy as np
    import tensorflow as tf

    model, optimizer, callbacks = build(args)
    model.compile(optimizer, "sparse_categorical_crossentropy")
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    n, b = len(y), args.batch
    steps = n // b
    x_all, y_all = tf.constant(x), tf.constant(y)
    model.optimizer.build(model.trainable_variables)  # what ProgramDevices.on_train_begin does
    variables = model.trainable_variables

    def step(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        model.optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    @tf.function(jit_compile=True)
    def epoch_fn(xs, ys, perm, count):
        def body(i, total):
            idx = tf.slice(perm, [i * b], [b])
            return i + 1, total + step(tf.gather(xs, idx), tf.gather(ys, idx))

        _, total = tf.while_loop(lambda i, _: i < count, body, (tf.constant(0), tf.constant(0.0)))
        return total / tf.cast(count, tf.float32)

    rng = np.random.default_rng(args.seed)

    def train_epoch(count=steps):
        return float(epoch_fn(x_all, y_all, tf.constant(rng.permutation(n).astype("int32")), tf.constant(count)))

    with common.Clock() as warm:
        for _ in range(args.warmup_epochs):
            train_epoch()
        if not args.warmup_epochs:
            train_epoch(min(steps, args.warmup_steps))
    seconds, cpu, losses = [], [], []
    for _ in range(args.epochs):
        with common.Clock() as c:
            losses.append(train_epoch())
        seconds.append(c.wall)
        cpu.append(c.cpu)
    accuracy = float(np.mean(np.argmax(model.predict(x[:1000], batch_size=1000, verbose=0), 1) == y[:1000]))
    return {"epoch_seconds": seconds, "epoch_cpu_seconds": cpu, "warmup_seconds": warm.wall, "loss": losses,
            "train_accuracy": accuracy, "jit_compile": "True", "steps_per_execution": steps}


def main():
    args = common.parse_args()
    if args.tool not in TOOLS:
        raise SystemExit(f"unknown tool {args.tool}; one of {TOOLS}")
    common.pin_thread_env(args.threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.xla_vector_width:  # replaces the width the driver's environment has (XLA takes the first); devsim keeps it
        flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith("--xla_cpu_prefer_vector_width")]
        os.environ["XLA_FLAGS"] = " ".join(flags + [f"--xla_cpu_prefer_vector_width={args.xla_vector_width}"])
    import devsim  # noqa: F401  (before Keras: every tool, float ones too, runs with devsim's XLA_FLAGS)
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    elif keras.backend.backend() != "jax" or args.tool.startswith("tf-") or args.tool.endswith("-epoch"):
        raise SystemExit(f"--tool {args.tool} runs on TensorFlow (or keras, devsim, devsim-c2c on JAX), "
                         f"not on KERAS_BACKEND={keras.backend.backend()}")
    for one in common.configs(args):
        keras.backend.clear_session()
        run(one)


def run(args):
    import keras
    import numpy as np

    x, y = common.load_data(args)
    if args.tool.startswith("tf-") or args.tool.endswith("-epoch"):
        import tensorflow as tf

        run = plain_tf if args.tool.startswith("tf-") else epoch_loop
        common.emit({"tool": args.tool, "net": args.net, "threads": args.threads, "batch": args.batch,
                     "images": len(y), **run(args, x, y),
                     "versions": {"tensorflow": tf.__version__, "numpy": np.__version__},
                     "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                     "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()})
        return
    n, b = len(y), args.batch
    spe = args.steps_per_execution or -(-n // b)
    jit = {"auto": "auto", "true": True, "false": False}[args.jit.lower()]
    model, optimizer, callbacks = build(args)
    model.compile(optimizer, "sparse_categorical_crossentropy", jit_compile=jit, steps_per_execution=spe)

    def fit(xs, ys, epochs, timer=None):
        extra = [timer] if timer else []
        if args.data_pipeline == "tfdata":
            model.fit(dataset(xs, ys, b, args.seed), epochs=epochs, verbose=0, callbacks=[*callbacks, *extra])
        else:
            model.fit(xs, ys, batch_size=b, epochs=epochs, shuffle=True, verbose=0, callbacks=[*callbacks, *extra])

    with common.Clock() as warm:
        if args.warmup_epochs:
            fit(x, y, args.warmup_epochs)
        else:
            m = min(n, args.warmup_steps * b)
            fit(x[:m], y[:m], 1)
    timer = common.epoch_timer()
    fit(x, y, args.epochs, timer)
    probabilities = model.predict(x[:1000], batch_size=1000, verbose=0)  # a sanity check, not timed
    accuracy = float(np.mean(np.argmax(probabilities, 1) == y[:1000]))
    from devsim import backends

    backend = keras.backend.backend()
    versions = {**backends.backend_versions(), "keras": keras.__version__, "numpy": np.__version__}
    if args.tool.startswith("devsim"):
        import devsim

        versions["devsim"] = devsim.__version__
        versions["devsim_path"] = os.path.dirname(devsim.__file__)
    common.emit({
        "tool": args.tool, "backend": backend, "net": args.net, "threads": args.threads, "batch": b, "images": n,
        "jit_compile": str(model.jit_compile), "steps_per_execution": spe, "data_pipeline": args.data_pipeline,
        "epoch_seconds": timer.seconds, "epoch_cpu_seconds": timer.cpu, "warmup_seconds": warm.wall,
        "loss": timer.loss, "train_accuracy": accuracy, "versions": versions,
        **(tf_threads() if backend == "tensorflow" else {"xla_flags": os.environ.get("XLA_FLAGS", "")}),
    })


def tf_threads():
    import tensorflow as tf

    return {"tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}


if __name__ == "__main__":
    main()
