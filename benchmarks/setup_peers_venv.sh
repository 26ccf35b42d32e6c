#!/usr/bin/env bash
# The comparison venv of benchmarks/peers.py: CPU PyTorch 2.13.0 and aihwkit 1.2.0 built against it.
#
#   bash benchmarks/setup_peers_venv.sh [VENV]        # default /work/peers-venv; ~8 minutes on 2 cores
#
# Why a build: aihwkit 1.2.0 publishes wheels for CPython 3.12-3.14 only (this machine has 3.11), and
# aihwkit 1.1.0's cp311 wheel is compiled against an older torch: with torch 2.13 it imports, then
# fails at its first tile ("Invalid weights dimensions: expected [10,100] tensor", a C++ ABI
# mismatch). So aihwkit 1.2.0's sdist is compiled here against the installed torch 2.13.0+cpu.
# Never let pip resolve "torch" by itself: a plain `pip install torch`, `pip install aihwkit` or an
# isolated build environment takes a multi-GB CUDA build (hence --no-build-isolation, --no-deps).
set -euo pipefail
VENV=${1:-/work/peers-venv}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
. "$VENV/bin/activate"
pip install -q torch==2.13.0                    # the CPU wheel that lies on this machine's disk
pip install -q numpy scipy scikit-learn protobuf tqdm requests   # aihwkit's runtime needs, torch(vision) aside

if python -c "import aihwkit, torch; from aihwkit.nn import AnalogLinear; AnalogLinear(4, 2, bias=False)(torch.ones(1, 4))" 2>/dev/null; then
    echo "aihwkit already works in $VENV"
    exit 0
fi
if ! dpkg -s libopenblas-dev >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq libopenblas-dev
fi
pip install -q "cmake>=4.2.1" "scikit-build>=0.18.1" "pybind11>=3.0.1" ninja mypy wheel "setuptools>=77"
work=$(mktemp -d)
pip download -q --no-deps --no-build-isolation --no-binary aihwkit aihwkit==1.2.0 -d "$work"
tar xzf "$work"/aihwkit-1.2.0.tar.gz -C "$work"
(cd "$work/aihwkit-1.2.0" &&
    USE_CUDA=OFF CMAKE_BUILD_PARALLEL_LEVEL=${JOBS:-2} pip wheel --no-build-isolation --no-deps -w "$work/wheel" .)
pip install --no-deps "$work"/wheel/aihwkit-1.2.0-*.whl
python -c "import aihwkit, torch; from aihwkit.nn import AnalogLinear; AnalogLinear(4, 2, bias=False)(torch.ones(1, 4)); print('aihwkit', aihwkit.__version__, 'with torch', torch.__version__)"
rm -rf "$work"
