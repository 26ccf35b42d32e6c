"""The README's Python example runs as written (on small random data)."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs():
    code = next(b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "DeviceOptimizer" in b)
    rng = np.random.default_rng(0)
    namespace = {
        "x_train": rng.uniform(0, 1, (64, 28, 28)).astype("float32"),
        "y_train": rng.integers(0, 10, 64),
    }
    exec(compile(code.replace("epochs=5", "epochs=1"), "README.md", "exec"), namespace)
    history, optimizer = namespace["history"], namespace["optimizer"]
    assert history.history["pulses_applied_dense"][0] > 0
    states = optimizer.device_states()
    assert set(states) == {"dense", "dense_1"} and states["dense"].shape == (784, 128)


def test_ci_installs_and_tests_as_the_readme_says():
    readme = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    commands = re.findall(r"```bash\n(.*?)```", readme, re.S)
    install = next(line.split("#")[0].strip() for block in commands for line in block.splitlines() if "pip install -e ." in line)
    test = next(line.strip() for block in commands for line in block.splitlines() if "pytest" in line)
    assert install in ci and test in ci
    torch = next(line.split("#")[0].strip() for block in commands for line in block.splitlines() if "pip install torch" in line)
    assert torch == "pip install torch==2.13.0" and torch in ci  # the pinned CPU wheel, never plain `torch` (CUDA)
    assert ci.index('pip install -e ".[test]"') < ci.index(torch) < ci.index(test)
    assert "pytest -q -m slow" in ci  # the slow tests the README's command leaves out still run in CI
