"""Text in the figures: axis labels and legend symbols of parameters, value formatting,
a device's legend label, model and class names.

Every parameter's label comes from `param_label` / `param_symbol`, which read it from the
option table (each option's `devsim.options.Spec` label and symbol). No matplotlib here.
"""

from __future__ import annotations

import math
import re

from devsim.figures.summary import is_number

__all__ = ["NON_OPTION_LABELS", "MODEL_NAMES", "CLASS_NAMES", "param_label", "param_symbol", "format_value",
           "value_label", "compact_label", "is_linear_value", "device_label", "model_labels"]

NON_OPTION_LABELS = {"model": ("Model", "model")}
"""Labels of summary columns that are not run options (the options' own are in the option table)."""

MODEL_NAMES = {"device": "device", "linear": "linear device", "float": "float (ideal)"}
"""Legend names of a run's models."""

CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "mnist-5k": [str(i) for i in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}
"""Class names per dataset, in label order."""

_LINEAR_AT = {"ltp": math.inf, "ltd": math.inf, "a_p": math.inf, "a_d": math.inf, "nl_ltp": 0, "nl_ltd": 0}
_MINUS = "\u2212"


def _labels(param):
    """(axis label, legend symbol) of a parameter, from its declaration in the option table
    (`devsim.config`); unknown ones are spelled from their name."""
    if param in NON_OPTION_LABELS:
        return NON_OPTION_LABELS[param]
    from devsim import options
    from devsim.config import option_spec

    spec = option_spec(param)
    return options.label(spec, param), options.symbol(spec, param)


def _tied_to(param, ties):
    """The fields tied to `param` (they take its value), e.g. ["ltd"] for ties {"ltd": "ltp"}."""
    return [field for field, source in (ties or {}).items() if source == param]


def param_label(param, ties=None) -> str:
    """Axis label of a swept parameter, e.g. "LTP curvature $A_\\mathrm{p}$", "Number of states".

    With `ties` ({field: source}, fields that take another's value), the tied symbols are
    added: "LTP curvature $A_\\mathrm{p}$ = $A_\\mathrm{d}$".
    """
    return " = ".join([_labels(param)[0]] + [param_symbol(f) for f in _tied_to(param, ties)])


def param_symbol(param, ties=None) -> str:
    """Legend symbol of a parameter, e.g. "$A_\\mathrm{p}$" (with ties: "$A_\\mathrm{p}$ = $A_\\mathrm{d}$")."""
    return " = ".join([_labels(param)[1]] + [param_symbol(f) for f in _tied_to(param, ties)])


def format_value(v) -> str:
    """Tick/legend text of a parameter value: "0.5", "64", "∞", "−0.8"."""
    if v is None:
        return "none"
    if is_number(v):
        if math.isinf(v):
            return "∞" if v > 0 else _MINUS + "∞"
        return f"{v:g}".replace("-", _MINUS)
    return str(v)


def is_linear_value(param, v) -> bool:
    """True for the value of a parameter that makes the device linear (A = ∞, NL = 0)."""
    if param in _LINEAR_AT:
        return is_number(v) and v == _LINEAR_AT[param]
    return is_number(v) and v == math.inf


def value_label(param, v, ties=None) -> str:
    """Legend text of one value, e.g. "$A_\\mathrm{p}$ = 0.5" or "$A_\\mathrm{p}$ = ∞ (linear)"."""
    if param == "model":
        return MODEL_NAMES.get(v, str(v))
    return f"{param_symbol(param, ties)} = {compact_label(param, v)}"


def compact_label(param, v) -> str:
    """Legend text of a value when the parameter is named in the legend title: "0.5", "∞ (linear)"."""
    if param == "model":
        return MODEL_NAMES.get(v, str(v))
    text = format_value(v)
    if param in _LINEAR_AT and is_number(v) and v == _LINEAR_AT[param]:
        text += " (linear)"
    return text


def device_label(device) -> str:
    """Figure legend text of a device, with A_p/A_d typeset as subscripts."""
    text = device.describe().replace("A_p", r"$A_\mathrm{p}$").replace("A_d", r"$A_\mathrm{d}$")
    return re.sub(r"-(?=[\d.])", _MINUS, f"device: {text}")  # minus signs of numbers, not of names


def model_labels(device) -> dict:
    """Legend labels of a run's models: the device's description, then the references' names."""
    return {**MODEL_NAMES, "device": device_label(device)}
