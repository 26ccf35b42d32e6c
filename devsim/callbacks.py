"""Keras callbacks for device-aware training."""

from __future__ import annotations

import keras

from devsim.optimizer import DeviceOptimizer


class ProgramDevices(keras.callbacks.Callback):
    """Programs the devices at each epoch end and logs the pulse counts.

    With ``DeviceOptimizer(update="epoch")`` (the original study's procedure)
    this is what turns the epoch's float drift into pulses: every weight that
    rose gets LTP, every weight that fell LTD (with ``pulses="sign"``, one
    pulse each), and the weights become the devices' values. With
    ``update="batch"`` the devices are already programmed every step and this
    only logs. Either way it adds ``pulses_applied_<layer>`` and
    ``pulses_lost_<layer>`` for the epoch to the logs, so they land in
    ``History``. Place it before callbacks that evaluate the programmed model.
    """

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        if not isinstance(optimizer, DeviceOptimizer):
            raise TypeError(
                "ProgramDevices needs a model compiled with a devsim.DeviceOptimizer, "
                f"got {type(optimizer).__name__}"
            )
        optimizer.build(self.model.trainable_variables)  # weights on device states from the first step

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if optimizer.update == "epoch":
            optimizer.program()
        if logs is not None:
            logs.update(optimizer.pulse_counts(reset=True))
