"""Losses of the training protocols."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="devsim")
def sum_squared_error(y_true, y_pred):
    """``sum_j (t_j - y_j)^2`` with ``t`` the one-hot label: NeuroSim's error signal (Train.cpp).

    Its gradient through a sigmoid output is NeuroSim's ``s2 = -2 y (1 - y)(t - y)``.
    ``y_true`` holds integer labels (as ``sparse_categorical_crossentropy``).
    """
    labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
    target = ops.one_hot(labels, ops.shape(y_pred)[-1], dtype=y_pred.dtype)
    return ops.sum(ops.square(target - y_pred), axis=-1)


LOSSES = {"crossentropy": "sparse_categorical_crossentropy", "sse": sum_squared_error}
"""Loss option -> Keras loss."""


def get(name):
    loss = LOSSES[name]
    return keras.losses.get(loss) if isinstance(loss, str) else loss
