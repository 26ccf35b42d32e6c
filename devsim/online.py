"""Training loops: which images an epoch trains on, and all of an epoch's updates in one XLA program.

`epoch_indices` draws an epoch's images: every training image once, shuffled
(Keras' default), or ``images_per_epoch`` draws with replacement (NeuroSim's
``rand() % numMnistTrainImages``, Train.cpp), reproducible from the seed.

`CompiledLoop` runs an epoch's updates, one mini-batch after the other, as
one ``tf.function(jit_compile=True)`` around a ``tf.while_loop``: forward
pass, gradient, optimizer step and device update of every mini-batch, with no
Python or Keras dispatch between them. At one image per update (NeuroSim)
this is what makes the per-image cost the arithmetic. Where a device layer
reads currents through the periphery (`devsim.periphery.AnalogDense`) and its
tile programs only the cells it pulses, the loop keeps the layer's read
currents between images (`devsim.periphery.ReadCache`): refreshed from the
kernel at the start of every epoch, updated by the tile for the cells it
programs, so an image that pulses no cell of a layer recomputes none of them.
"""

from __future__ import annotations

import contextlib

import numpy as np


def epoch_indices(n_train: int, epoch: int, seed: int, images_per_epoch: int | None = None) -> np.ndarray:
    """The training images of epoch ``epoch`` (0-based), in order.

    ``images_per_epoch`` None: a permutation of all ``n_train`` images; else that
    many uniform draws with replacement. Both from numpy's generator seeded with
    ``(seed, epoch)``.
    """
    rng = np.random.default_rng([int(seed), int(epoch)])
    if images_per_epoch is None:
        return rng.permutation(n_train)
    return rng.integers(0, n_train, size=int(images_per_epoch))


class CompiledLoop:
    """All the updates of an epoch as one XLA program (TensorFlow backend only: a ``tf.while_loop``;
    on another backend it raises `devsim.errors.ConfigError` naming ``--train-loop``).

    Args:
        model: a compiled Keras model (its optimizer, e.g. a `devsim.DeviceOptimizer`
            with ``update="batch"``, must be built).
        loss: the loss function ``loss(y_true, y_pred)`` (mean over the batch).
        x, y: the training data (kept on the device as constants).
        batch_size: images per update.
    """

    def __init__(self, model, loss, x, y, batch_size: int = 1):
        from devsim import backends

        backends.require_tensorflow("--train-loop", "compiled (a tf.while_loop over the epoch)")
        import tensorflow as tf

        self.model, self.loss, self.batch_size = model, loss, int(batch_size)
        self.x = tf.constant(np.asarray(x))
        self.y = tf.constant(np.asarray(y))
        self.read_caches = _read_caches(model)
        self._fn = tf.function(self._epoch, jit_compile=True, autograph=False)

    def _epoch(self, batches):
        import tensorflow as tf

        model, variables = self.model, self.model.trainable_variables
        steps = tf.shape(batches)[0]

        def body(t, loss_sum, correct):
            index = batches[t]
            xb, yb = tf.gather(self.x, index), tf.gather(self.y, index)
            with tf.GradientTape() as tape:
                pred = model(xb, training=True)
                loss = tf.reduce_mean(self.loss(yb, pred))
            grads = tape.gradient(loss, variables)
            model.optimizer.apply(grads, variables)
            hits = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(pred, axis=-1, output_type=yb.dtype), yb), tf.int64))
            return t + 1, loss_sum + tf.cast(loss, tf.float64), correct + hits

        start = (tf.constant(0), tf.constant(0.0, tf.float64), tf.constant(0, tf.int64))
        _, loss_sum, correct = tf.while_loop(lambda t, *_: t < steps, body, start)
        return loss_sum, correct

    def run_epoch(self, indices) -> dict:
        """Train on ``indices`` (whole mini-batches; a last partial batch is dropped, as with
        ``images_per_epoch`` divisible by the batch it never occurs). Returns the mean training
        loss and accuracy of the forward passes before each update."""
        indices = np.asarray(indices)
        steps = len(indices) // self.batch_size
        if steps == 0:
            return {"loss": float("nan"), "accuracy": float("nan")}
        batches = indices[: steps * self.batch_size].reshape(steps, self.batch_size).astype(np.int32)
        with contextlib.ExitStack() as stack:  # traced (on the first call) with the caches active
            for cache in self.read_caches:
                cache.refresh()  # the kernels may have changed since (e.g. a reload, an epoch update)
                stack.enter_context(cache.activated())
            loss_sum, correct = self._fn(batches)
        return {"loss": float(loss_sum) / steps, "accuracy": int(correct) / (steps * self.batch_size)}


def _read_caches(model) -> list:
    """Give every tile that can keep them the read currents of the layer that reads its array
    (`devsim.periphery.ReadCache`); return the caches."""
    from devsim import periphery

    tiles = {id(tile.variable): tile for tile in getattr(model.optimizer, "tiles", ())}
    caches = []
    for layer in model.layers:
        tile = tiles.get(id(getattr(layer, "kernel", None)))
        if (tile is not None and isinstance(layer, periphery.AnalogDense) and layer.reads.reads_currents
                and tile.programs_pulsed_cells_only):
            tile.read_cache = layer.read_cache()
            caches.append(tile.read_cache)
    return caches
