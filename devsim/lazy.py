"""``keras.ops`` and ``keras.random``, imported on first use.

Importing Keras starts its backend (TensorFlow: seconds, and C++ log lines).
Modules whose numpy parts answer the quick commands (``devsim --help``,
``devsim devices``, ``devsim device``) import these proxies instead, so Keras
loads only when a tensor op actually runs.
"""

from __future__ import annotations

import importlib


class _Module:
    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self):
        return f"<lazy {self._name}>"


ops = _Module("keras.ops")
random = _Module("keras.random")
