"""Keep TensorFlow's C++ start-up chatter off the terminal."""

import contextlib
import os
import sys


@contextlib.contextmanager
def quiet_stderr():
    """Hide the C++ start-up chatter TensorFlow prints on stderr (CUDA probing on
    CPU machines) while it loads. Python exceptions still surface afterwards."""
    if os.environ.get("DEVSIM_VERBOSE_TF"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # CUDA probing prints here
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def quiet_logs():
    """Start worker processes without their start-up chatter: TensorFlow's C++ log
    lines and dask's INFO/WARNING lines (the worker processes inherit the setting)."""
    import logging

    saved = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    loggers = [logging.getLogger(name) for name in ("distributed", "distributed.nanny", "distributed.scheduler")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        if saved is None:
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
        else:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = saved
