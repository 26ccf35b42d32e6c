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
