"""Training protocols: named bundles of run options (``devsim run --protocol neurosim``).

A protocol is a table of option values. `devsim.config.RunConfig` fills every
option left unset from the protocol's table, and the rest from their
fallbacks; options given explicitly (on the command line, in a sweep, in
Python) override the protocol's. config.json records the resolved values, and
which of them the protocol set (``protocol_fields``).

Every entry is an ordinary devsim option, usable without the protocol.
``neurosim`` is MLP+NeuroSim V3.0's training and test procedure
(docs/neurosim.md is its specification, docs/protocols.md maps each value to
the NeuroSim source it comes from).
"""

from __future__ import annotations

NEUROSIM = {
    # data (IO.cpp, Param.cpp): central 20 x 20 pixels, binarized at 0.5; 8000 images per epoch, with replacement
    "crop": 20,
    "binarize": 0.5,
    "images_per_epoch": 8000,
    "epochs": 125,
    # network and loss (Param.cpp, Train.cpp): 400-100-10, sigmoid layers, no biases, sum of squared errors
    "hidden": (100,),
    "activation": "sigmoid",
    "output_activation": "sigmoid",
    "bias": False,
    "loss": "sse",
    # optimizer (Param.cpp, Train.cpp): SGD with alpha1 = 0.4, alpha2 = 0.2, one image per update
    "optimizer": "neurosim-sgd",
    "lr": 0.4,
    "layer_lr": (0.4, 0.2),
    "update": "batch",
    "batch_size": 1,
    "train_loop": "compiled",
    "skip_zero_rows": True,  # speed only: the same pulses
    "threads": 1,  # speed only: one image per step runs faster on one thread (sweeps: one run per --workers)
    # periphery of the hardware forward pass (Train.cpp, Test.cpp, Mapping.cpp, Array.cpp, Param.cpp)
    "hidden_threshold": 0.5,
    "adc_bits": 8,
    "r_access": 15e3,
    "r_wire": 0.4748,
    # weight update (Cell.cpp RealDevice::Write): round half away from zero, no cap, (int)(k/N N)
    "pulses": "neurosim",
    "pulse_truncation": True,
    "c2c_mode": "neurosim",
    "mapping": "reference",
    "wmax": 1.0,
    "count_pulses": True,
    "count_lost": False,  # NeuroSim counts the pulses it sends (LTP, LTD), not those past a bound
    # devices (Cell.cpp, formula.cpp): maxNumLevel = pulses of a full sweep, the label table
    "preset_levels": "neurosim",
    "nl_table": True,
    # initial weights (Mapping.cpp): (rand() % 7 - 3)/3, mapped to float conductances without + Gmin
    "init": "neurosim",
    "gmin_offset": True,
    "snap_init": False,
}
"""MLP+NeuroSim V3.0 (docs/neurosim.md; where each value comes from: docs/protocols.md)."""

PROTOCOLS = {"neurosim": NEUROSIM}
"""Protocols by name: ``{option name: value}``."""
