"""The option table: every parameter's name, type, default, unit, help and allowed values, declared once.

A parameter is a dataclass field whose metadata holds a `Spec` (made with
`option`). The device parameters are the fields of `devsim.devices.ExpDevice`,
the run parameters those of `devsim.run.RunConfig` (which takes the device
fields over as optional overrides). Everything else derives from the fields:

- validation (`check`), with errors that name the parameter (`FieldError`);
- the command line (`devsim.cli` builds every ``--option`` from the table);
- sweep value types (`value_type`, `parse`);
- figure labels (`Spec.label`, `Spec.symbol`);
- the option table in README.md (`markdown_table`, checked by a test).

This module imports nothing heavy: the CLI reads it to answer ``--help``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing

import numpy as np

SPEC = "devsim"
"""The key of a field's `Spec` in its dataclass metadata."""

CONDUCTANCE_UNITS = {"S": 1.0, "mS": 1e-3, "uS": 1e-6, "nS": 1e-9}
"""The units ``devsim fit --unit`` accepts for a pulse CSV's conductance column, in siemens."""


class FieldError(ValueError):
    """A bad value of one parameter; ``field`` names it, the message says what is allowed.

    The message starts with the field's name (``"states: must be an integer ..."``),
    so it reads well from Python; the CLI replaces the name by the option's flag.
    """

    def __init__(self, field: str, message: str):
        self.field, self.reason = field, message
        super().__init__(f"{field}: {message}")


@dataclasses.dataclass(frozen=True)
class Spec:
    """What the table knows about one parameter (besides its name, type and default).

    Args:
        help: one sentence: what it is and what it does, with the equation if
            there is one.
        unit: its unit, or what it is a fraction of ("" when unitless or text).
        label: axis label of a figure (matplotlib mathtext); default: the name.
        symbol: short legend symbol ("A_p = 0.5"); default: the name.
        choices: the allowed values of a text option.
        minimum, maximum: inclusive bounds of a number (None: unbounded);
            ``exclusive_minimum`` makes the lower bound strict.
        finite: reject infinite values.
        validate: extra check ``validate(value) -> error text or None`` for
            rules bounds cannot state (runs after the type and bound checks).
        option: the name in `RunConfig` and on the command line (``--ltp`` for
            the device field ``a_p``); default: the field name.
        cli: kind of command-line option: ``"value"``, ``"switch"``
            (``--bias/--no-bias``), ``"flag"`` (``--linear``), ``"widths"``
            (``128,64``), ``"floats"`` (a list of numbers, ``0.4,0.2``), or None
            for parameters that are not options.
        sweep: whether `devsim sweep` may list several values.
        group: heading the option is listed under in ``--help`` and README.
    """

    help: str
    unit: str = ""
    label: str | None = None
    symbol: str | None = None
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    finite: bool = False
    validate: typing.Callable | None = None
    option: str | None = None
    cli: str | None = "value"
    sweep: bool = True
    group: str = "training"


def option(default, help: str, **spec):
    """A dataclass field that is a parameter: ``x: float = option(1.0, "What x is.", minimum=0)``."""
    return dataclasses.field(default=default, metadata={SPEC: Spec(help=help, **spec)})


def spec_of(field: dataclasses.Field) -> Spec | None:
    return field.metadata.get(SPEC)


def parameters(cls) -> dict[str, dataclasses.Field]:
    """The fields of a dataclass (or instance) that carry a `Spec`, in declaration order."""
    return {f.name: f for f in dataclasses.fields(cls) if spec_of(f) is not None}


def value_type(field: dataclasses.Field):
    """The value type of a field: ``float``, ``int``, ``bool``, ``str`` or ``tuple`` (layer widths).

    ``None`` in an annotation (``int | None``) is ignored; annotations may be
    strings (``from __future__ import annotations``).
    """
    annotation = field.type
    if isinstance(annotation, str):
        names = [part.strip() for part in annotation.split("|")]
        names = [n for n in names if n != "None"]
        base = names[0].split("[")[0]
        return {"float": float, "int": int, "bool": bool, "str": str, "tuple": tuple}.get(base, str)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = args[0]
    return typing.get_origin(annotation) or annotation


def describe_allowed(spec: Spec, kind) -> str:
    """``"an integer from 2 to 100000"``, ``"a number > 0"``, ``"one of sqrt, step"``."""
    if spec.choices:
        return "one of " + ", ".join(map(str, spec.choices))
    if kind is bool:
        return "true or false"
    noun = "an integer" if kind is int else "a finite number" if spec.finite else "a number"
    lo, hi = spec.minimum, spec.maximum
    if lo is not None and hi is not None and not spec.exclusive_minimum:
        return f"{noun} from {_number(lo)} to {_number(hi)}"
    parts = []
    if lo is not None:
        parts.append(f"{'>' if spec.exclusive_minimum else '>='} {_number(lo)}")
    if hi is not None:
        parts.append(f"<= {_number(hi)}")
    return f"{noun} {' and '.join(parts)}" if parts else noun


def _number(x) -> str:
    """A bound as text: integers exactly (``4294967295``), others as ``%g`` (``0.001``, ``10.02``)."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


def check(name: str, field: dataclasses.Field, value, scalar: bool = False):
    """Validate one value against its field's type and `Spec`; returns it converted.

    ``None`` passes for fields whose default is None. Numbers may be numpy
    arrays (per-device values, every element checked) unless ``scalar``.

    Raises:
        FieldError: naming ``name`` and what is allowed.
    """
    spec, kind = spec_of(field), value_type(field)
    if value is None:
        if field.default is None or (kind is bool and spec.cli == "switch"):
            return None
        raise FieldError(name, f"must be {describe_allowed(spec, kind)}, got None")
    allowed = describe_allowed(spec, kind)
    if kind is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise FieldError(name, f"must be true or false, got {value!r}")
        return bool(value)
    if kind is str:
        if not isinstance(value, str):
            raise FieldError(name, f"must be text, got {value!r}")
        if spec.choices and value not in spec.choices:
            raise FieldError(name, f"unknown value {value!r}; choose from {', '.join(spec.choices)}")
    elif kind is tuple and spec.cli == "floats":
        try:
            array = np.asarray(value, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise FieldError(name, f"must be a list of numbers such as 0.4,0.2, got {value!r}") from None
        if isinstance(value, str) or array.size == 0 or not np.all(np.isfinite(array)):
            raise FieldError(name, f"must be a list of finite numbers such as 0.4,0.2, got {value!r}")
        _check_bounds(name, spec, array, f"a list of numbers each {describe_allowed(spec, float)[len('a number '):]}", value)
        value = tuple(float(v) for v in array)
    elif kind is tuple:
        if _is_int(value):
            value = (value,)
        if isinstance(value, (str, dict)) or not all(_is_int(v) for v in np.ravel(np.asarray(value, dtype=object))):
            raise FieldError(name, f"must be layer widths (positive integers) such as 128 or 256,128, got {value!r}")
        value = tuple(int(v) for v in value)
        if not value or min(value) < 1 or (spec.maximum is not None and max(value) > spec.maximum):
            top = f" up to {_number(spec.maximum)}" if spec.maximum is not None else ""
            raise FieldError(name, f"must be one or more positive widths{top}, such as 128 or 256,128, got {value}")
    elif kind is int:
        if not _is_int(value):
            raise FieldError(name, f"must be {allowed}, got {value!r}")
        value = int(value)
        _check_bounds(name, spec, value, allowed)
    elif kind is float:
        array = _as_float_array(name, value, allowed)
        if scalar and array.ndim:
            raise FieldError(name, f"must be one number ({allowed}), got {_short(value)}")
        problem = spec.validate(array if array.ndim else float(array)) if spec.validate is not None else None
        if problem:
            raise FieldError(name, problem)
        if np.any(np.isnan(array)):
            raise FieldError(name, f"must be {allowed}, got {value!r}")
        if spec.finite and not np.all(np.isfinite(array)):
            raise FieldError(name, f"must be {allowed}, got {value!r}")
        _check_bounds(name, spec, array, allowed, value)
        value = float(array) if array.ndim == 0 else array
    if spec.validate is not None and kind is not float:
        problem = spec.validate(value)
        if problem:
            raise FieldError(name, problem)
    return value


def check_all(obj, names=None, scalar=False):
    """`check` every parameter field of the dataclass instance ``obj`` (in place).

    Args:
        names: ``{field: name in messages}`` (default: the field names).
        scalar: numbers must be single values.
    """
    for field_name, field in parameters(obj).items():
        value = check((names or {}).get(field_name, field_name), field, getattr(obj, field_name), scalar)
        object.__setattr__(obj, field_name, value)


def _is_int(value) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    return isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer()


def _as_float_array(name, value, allowed):
    if isinstance(value, (bool, np.bool_, str)) or (isinstance(value, np.ndarray) and value.dtype == bool):
        raise FieldError(name, f"must be {allowed}, got {value!r}")
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise FieldError(name, f"must be {allowed}, got {value!r}") from None


def _check_bounds(name, spec, array, allowed, shown=None):
    shown = array if shown is None else shown
    lo, hi = spec.minimum, spec.maximum
    with np.errstate(invalid="ignore"):
        if lo is not None and np.any(np.less_equal(array, lo) if spec.exclusive_minimum else np.less(array, lo)):
            raise FieldError(name, f"must be {allowed}, got {_short(shown)}")
        if hi is not None and np.any(np.greater(array, hi)):
            raise FieldError(name, f"must be {allowed}, got {_short(shown)}")


def _short(value):
    if isinstance(value, np.ndarray) and value.size > 4:
        return f"an array with values from {np.nanmin(value):g} to {np.nanmax(value):g}"
    return repr(value) if not isinstance(value, np.ndarray) else repr(value.tolist())


def parse(field: dataclasses.Field, text: str, name: str):
    """One value of a field from command-line or TOML text (``"inf"``, ``"128,64"``, ``"true"``).

    Non-text values (from TOML) are checked for their type and passed through.

    Raises:
        FieldError: the text is not a value of the field's type.
    """
    kind = value_type(field)
    if field.default is None and is_off(text):
        return OFF
    if not isinstance(text, str):
        if kind is tuple and isinstance(text, list):
            return tuple(text)
        if kind is tuple and isinstance(text, int) and not isinstance(text, bool):
            return (text,)  # one hidden layer
        if kind is float and isinstance(text, int) and not isinstance(text, bool):
            return float(text)
        return text
    stripped = text.strip()
    try:
        if kind is float:
            return float(stripped)
        if kind is int:
            return int(stripped)
        if kind is bool:
            return {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}[stripped.lower()]
        if kind is tuple and spec_of(field).cli == "floats":
            return tuple(float(x) for x in stripped.split(","))
        if kind is tuple:
            return tuple(int(x) for x in stripped.replace("x", ",").split(","))
    except (ValueError, KeyError):
        noun = {float: "number", int: "integer", bool: "true/false value", tuple: "list of layer widths"}[kind]
        if kind is tuple and spec_of(field).cli == "floats":
            noun = "list of numbers"
        raise FieldError(name, f"{text!r} is not a valid {noun}") from None
    return stripped


def flag(name: str) -> str:
    """The command-line flag of an option name: ``"d2d_range"`` -> ``"--d2d-range"``."""
    return "--" + name.replace("_", "-")


def label(spec: Spec | None, name: str) -> str:
    """Axis label of a parameter (its `Spec.label`, else its name)."""
    return (spec.label if spec and spec.label else None) or name.replace("_", " ").capitalize()


def symbol(spec: Spec | None, name: str) -> str:
    """Legend symbol of a parameter (its `Spec.symbol`, else its name)."""
    return (spec.symbol if spec and spec.symbol else None) or name.replace("_", " ")


def format_default(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def help_text(spec: Spec, default=None, kind=None) -> str:
    """The ``--help`` text of an option: help, unit, allowed values."""
    text = spec.help
    if spec.unit:
        text += f" Unit: {spec.unit}."
    if kind in (int, float) and (spec.minimum is not None or spec.maximum is not None):
        text += f" Allowed: {describe_allowed(spec, kind)}."
    return text


OFF = "off"
"""The value that turns off an option whose default is None (unset), where a protocol would set it:
``--adc-bits off``, ``RunConfig(protocol="neurosim", crop="off")``; it resolves to None."""


def is_off(value) -> bool:
    return isinstance(value, str) and value.strip().lower() in ("off", "none")


FALLBACK = "devsim_fallback"
"""Metadata key of an override field's value when it is not given (a device option: `ExpDevice`'s default)."""

FALLBACK_FROM = "devsim_fallback_from"
"""Metadata key of what an override field overrides: ``"preset"`` (device options, the default) or
``"protocol"`` (options a training protocol may set, `devsim.protocols`)."""


def protocol_option(fallback, help: str, **spec):
    """A field a protocol (``--protocol``) may set: default None, resolved to the protocol's value, else ``fallback``."""
    return dataclasses.field(default=None, metadata={SPEC: Spec(help=help, **spec), FALLBACK: fallback,
                                                     FALLBACK_FROM: "protocol"})


PER_ALGORITHM = "devsim_per_algorithm"
"""Metadata key of an algorithm option: its default comes from the chosen algorithm (`devsim.algorithms`)."""


def default_text(field) -> str:
    """The default as a reader sees it: ``0.01``, or ``preset's, else 0`` for device overrides ("" for none)."""
    if PER_ALGORITHM in field.metadata:
        defaults = field.metadata[PER_ALGORITHM]
        values = {format_default(v) for v in defaults.values()}
        if len(values) == 1:
            value = values.pop()
            return f"`{value}`" if value else ""
        return ", ".join(f"{name}: `{format_default(v)}`" for name, v in defaults.items())
    if FALLBACK in field.metadata:
        fallback = format_default(field.metadata[FALLBACK])
        if field.metadata.get(FALLBACK_FROM) == "protocol":
            return f"`{fallback}` (protocol's if set)" if fallback else "(protocol's if set)"
        return f"preset's, else `{fallback}`" if fallback else "preset's"
    default = format_default(field.default)
    return f"`{default}`" if default else ""


def markdown_table(cls, groups=None) -> str:
    """The option table of ``cls`` (e.g. `RunConfig`) as Markdown: option, default, unit, meaning."""
    lines = ["| option | default | unit | meaning |", "|---|---|---|---|"]
    for name, field in parameters(cls).items():
        spec = spec_of(field)
        if spec.cli is None or (groups and spec.group not in groups):
            continue
        cli = flag(name) if spec.cli != "switch" else f"{flag(name)}/--no-{name.replace('_', '-')}"
        meaning = spec.help.replace("|", "\\|")
        if spec.choices:
            meaning += f" Choices: {', '.join(spec.choices)}."
        lines.append(f"| `{cli}` | {default_text(field)} | {spec.unit} | {meaning} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m devsim.options: the README's option table
    from devsim.config import RunConfig

    print(markdown_table(RunConfig), end="")


def document(cls):
    """Append an ``Args:`` section, one entry per parameter from its `Spec`, to ``cls.__doc__``."""
    lines = ["", "    Args:"]
    for name, field in parameters(cls).items():
        spec = spec_of(field)
        text = spec.help + (f" Unit: {spec.unit}." if spec.unit else "")
        if spec.choices:
            text += f" One of {', '.join(spec.choices)}."
        lines.append(f"        {name}: {text}")
    cls.__doc__ = (cls.__doc__ or "").rstrip() + "\n" + "\n".join(lines) + "\n"
    return cls
