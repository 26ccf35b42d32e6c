"""Exceptions for bad input (kept free of heavy imports so the CLI can catch them cheaply)."""


class ConfigError(ValueError):
    """A bad parameter; the message starts with the option's name (``--ltp: ...``)."""


class SweepStopped(RuntimeError):
    """A sweep cannot go on (it cannot even record a failed run, e.g. the disk is full); finished runs are kept."""
