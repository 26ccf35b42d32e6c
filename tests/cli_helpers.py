"""What the tests that run devsim share: its command line in this process, and data without the network.

Import both names into a test module (``from cli_helpers import call, offline``):
``offline`` is an autouse fixture, active in every module that imports it.
"""

from __future__ import annotations

import pytest

from devsim import data
from devsim.cli import main


def call(argv, capsys):
    """Run ``devsim <argv>`` in this process: ``(exit status, stdout, stderr)``."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def _no_download(name):
    raise OSError("URL fetch failure (offline in tests)")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path_factory):
    """Data never downloads in tests: the Keras loader fails as it does offline, its cache is
    empty and ``DEVSIM_DATA_DIR`` is unset (so mnist falls back to mnist-5k)."""
    monkeypatch.setattr(data, "_keras_load", _no_download)
    monkeypatch.setattr(data, "_keras_cache_dir", lambda: tmp_path_factory.mktemp("cache"))
    monkeypatch.delenv("DEVSIM_DATA_DIR", raising=False)
