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

    With read noise (`ExpDevice.read_noise`), pass it to ``evaluate`` and
    ``predict`` as well: it reads the devices afresh before every batch.
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

    # Read noise: every evaluation/prediction batch reads the devices afresh.
    # Pass this callback to `evaluate`/`predict` too when read noise is on.
    def _read(self):
        optimizer = self.model.optimizer
        if isinstance(optimizer, DeviceOptimizer) and optimizer.built and optimizer.has_read_noise:
            optimizer.read_devices(noisy=True)

    def _restore(self):
        optimizer = self.model.optimizer
        if isinstance(optimizer, DeviceOptimizer) and optimizer.built and optimizer.has_read_noise:
            optimizer.read_devices(noisy=optimizer.update == "batch")

    def on_test_batch_begin(self, batch, logs=None):
        self._read()

    def on_predict_batch_begin(self, batch, logs=None):
        self._read()

    def on_test_end(self, logs=None):
        self._restore()

    def on_predict_end(self, logs=None):
        self._restore()
