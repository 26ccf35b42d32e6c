"""--model: LeNet-5 and VGG-8 on devices from the command line, a user's builder, subsets of the data."""

import csv
import json
import pickle

import numpy as np
import pytest

from devsim.mapping import ReferenceMapping
from devsim.models import build_lenet5, build_network, build_vgg8, kernel_shapes
from cli_helpers import call, offline  # noqa: F401  (offline: an autouse fixture)


def test_vgg8_is_dnn_neurosim_v21s_network():
    model = build_vgg8((32, 32, 3))
    assert kernel_shapes(model) == [(3, 3, 3, 128), (3, 3, 128, 128), (3, 3, 128, 256), (3, 3, 256, 256),
                                    (3, 3, 256, 512), (3, 3, 512, 512), (8192, 1024), (1024, 10)]
    assert sum(int(np.prod(s)) for s in kernel_shapes(model)) == 12_973_440
    assert model.output_shape == (None, 10)
    assert not any(v.name == "bias" for v in model.weights)  # DNN+NeuroSim's QConv2d/QLinear have none
    assert [l.name for l in model.layers if l.weights] == [*(f"conv_{i}" for i in range(1, 7)), "dense_1", "dense_2"]
    half = build_vgg8((32, 32, 3), width=0.5)
    assert sum(int(np.prod(s)) for s in kernel_shapes(half)) == 3_246_784


def test_lenet5_shapes_on_grey_and_colour_images():
    assert kernel_shapes(build_lenet5((28, 28))) == [(5, 5, 1, 6), (5, 5, 6, 16), (400, 120), (120, 84), (84, 10)]
    assert kernel_shapes(build_lenet5((32, 32, 3)))[:3] == [(5, 5, 3, 6), (5, 5, 6, 16), (576, 120)]
    assert kernel_shapes(build_network("lenet5", (28, 28), crop=20))[2] == (144, 120)


def test_lenet5_trains_on_devices_from_the_cli_and_every_kernel_holds_a_device_state(tmp_path, capsys):
    code, out, err = call(["run", "--model", "lenet5", "--dataset", "mnist-5k", "--train-size", "512", "--test-size",
                           "256", "--epochs", "2", "--update", "batch", "--lr", "0.1", "--states", "32",
                           "--out", str(tmp_path)], capsys)
    assert code == 0, err
    folder = tmp_path / "mnist-5k_lenet5_linear_batch-stochastic_s0"
    config = json.loads((folder / "config.json").read_text())
    assert config["devsim_run"]["model"] == "lenet5" and config["devsim_run"]["init"] == "glorot"
    assert config["dataset"]["n_train"] == 512 and config["dataset"]["n_test"] == 256
    assert config["dataset"]["subset_of"] == {"n_train": 4000, "n_test": 1000}
    assert config["final"]["device"]["test_accuracy"] > 0.3  # 2 epochs of 512 digits: well above chance
    mapping = ReferenceMapping(1.0)
    with np.load(folder / "states_device.npz") as states:
        kernels = {k: states[k] for k in states.files if k.startswith("w_")}
        conductances = {k: states[k] for k in states.files if k.startswith("g_")}
    assert sorted(kernels) == ["w_conv_1", "w_conv_2", "w_dense_1", "w_dense_2", "w_dense_3"]
    assert kernels["w_conv_1"].shape == (5, 5, 1, 6)
    for name, w in kernels.items():
        g = conductances["g_" + name[2:]]
        np.testing.assert_allclose(g * 31, np.round(g * 31), atol=1e-4)  # on one of the 32 levels k/31
        np.testing.assert_allclose(w, np.asarray(mapping.weights(g)), atol=1e-6)
    code, out, err = call(["plot", str(folder)], capsys)  # the prediction figures rebuild LeNet-5
    assert code == 0, err
    assert (folder / "confusion_device.png").is_file() and "give test accuracy" not in err


def write_fake_cifar(folder, per_batch=16, seed=0):
    """CIFAR-10's python batches (cifar-10-batches-py/), with random images."""
    rng = np.random.default_rng(seed)
    root = folder / "cifar-10-batches-py"
    root.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": list(rng.integers(0, 10, per_batch))}
        with open(root / name, "wb") as f:
            pickle.dump(batch, f)
    return folder


@pytest.mark.slow
def test_vgg8_on_cifar10_from_the_cli(tmp_path, capsys):
    """The CIFAR-10 device experiment's command, on stand-in data (no CIFAR-10 offline here)."""
    cifar = write_fake_cifar(tmp_path / "data", per_batch=8)
    code, out, err = call(["run", "--model", "vgg8", "--dataset", "cifar10", "--data-dir", str(cifar), "--epochs", "1",
                           "--update", "batch", "--no-baselines", "--test-size", "4", "--out", str(tmp_path / "r")],
                          capsys)
    assert code == 0, err
    folder = tmp_path / "r" / "cifar10_vgg8_linear_batch-stochastic_s0"
    config = json.loads((folder / "config.json").read_text())
    assert config["dataset"]["n_train"] == 40 and config["dataset"]["n_test"] == 4
    with np.load(folder / "states_device.npz") as states:
        assert states["g_conv_6"].shape == (3, 3, 512, 512) and states["w_dense_1"].shape == (8192, 1024)


BUILDER = '''
import keras


def build(input_shape, classes):
    """A small CNN with biases and batch normalization."""
    return keras.Sequential([
        keras.Input(input_shape), keras.layers.Reshape((*input_shape, 1)),
        keras.layers.Conv2D(4, 3, name="conv"), keras.layers.BatchNormalization(name="norm"),
        keras.layers.Activation("relu"), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(classes, activation="softmax", name="out"),
    ])


def not_a_model(input_shape, classes):
    return 42
'''


def test_a_users_builder_trains_with_float_biases_and_normalization(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_nets.py").write_text(BUILDER)
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, err = call(["run", "--model", "my_nets:build", "--dataset", "mnist-5k", "--train-size", "256",
                           "--test-size", "128", "--epochs", "1", "--update", "batch", "--states", "16",
                           "--no-baselines", "--out", str(tmp_path / "r")], capsys)
    assert code == 0, err
    folder = tmp_path / "r" / "mnist-5k_my-nets-build_linear_batch-stochastic_s0"
    with np.load(folder / "states_device.npz") as states:
        names = set(states.files)
        g = states["g_conv"]
    assert {"w_conv", "w_out", "g_conv", "g_out", "f_conv/bias", "f_norm/gamma", "f_norm/moving_mean"} <= names
    assert not {"g_norm", "g_bias"} & names  # normalization and biases stay float
    np.testing.assert_allclose(np.round(g * 15), g * 15, atol=1e-4)  # linear device, 16 levels k/15
    code, out, err = call(["run", "--model", "my_nets:not_a_model", "--dataset", "mnist-5k", "--epochs", "1",
                           "--out", str(tmp_path / "r2")], capsys)
    assert code == 2 and err.strip().startswith("Error: --model:") and "not a keras.Model" in err, err
    assert not (tmp_path / "r2").exists()


def test_cnn_sweeps_run_one_by_one(tmp_path, capsys):
    code, out, err = call(["sweep", "--model", "lenet5", "--dataset", "mnist-5k", "--train-size", "128", "--test-size",
                           "64", "--epochs", "1", "--update", "batch", "--no-baselines", "--ltp", "0.5,2",
                           "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert "stacked" not in out and "failed" not in out
    with open(next(tmp_path.iterdir()) / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(float(r["ltp"]) for r in rows) == [0.5, 2.0] and all(r["status"] == "complete" for r in rows), rows
