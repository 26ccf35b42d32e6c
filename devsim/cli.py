"""The `devsim` command line: `devsim run`, `devsim device`.

Bad input exits with status 2 and one line ``Error: --option: what is allowed``,
before anything is written.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys

import click

from devsim import __version__


@contextlib.contextmanager
def _quiet_stderr():
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


def _hidden(ctx, param, value):
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"must be comma-separated layer widths such as 128 or 256,128, got {value!r}") from None


def device_options(f):
    """The options that define a device (shared by `run` and `device`)."""
    options = [
        click.option("--device", default=None, help="A preset (see `devsim devices`) or a device JSON file; other options override it."),
        click.option("--ltp", type=float, default=None, help="LTP curvature A_p: > 0 saturating, < 0 accelerating, inf linear."),
        click.option("--ltd", type=float, default=None, help="LTD curvature A_d (same conventions). Unset: inf."),
        click.option("--nl-ltp", type=float, default=None, help="NeuroSim LTP label instead of --ltp (e.g. 2.4)."),
        click.option("--nl-ltd", type=float, default=None, help="NeuroSim LTD label instead of --ltd (e.g. -4.88)."),
        click.option("--linear", is_flag=True, help="Linear device (A_p = A_d = inf)."),
        click.option("--states", type=int, default=None, help="Conductance levels per device (N = states - 1 pulses). Default 101."),
        click.option("--states-ltd", type=int, default=None, help="Levels of the LTD branch, if it differs."),
        click.option("--on-off", type=float, default=None, help="On/off ratio Gmax/Gmin (default inf: Gmin = 0)."),
        click.option("--c2c", type=float, default=None, help="Cycle-to-cycle sigma, fraction of range, per sqrt(pulse)."),
        click.option("--c2c-mode", default=None, help="sqrt (NeuroSim: sigma*sqrt(n)) or step (sigma proportional to the step)."),
        click.option("--d2d", type=float, default=None, help="Device-to-device sigma of the NL labels."),
        click.option("--d2d-range", type=float, default=None, help="Device-to-device relative sigma of the conductance range."),
        click.option("--stuck-gmin", type=float, default=None, help="Fraction of devices stuck at Gmin."),
        click.option("--stuck-gmax", type=float, default=None, help="Fraction of devices stuck at Gmax."),
        click.option("--read-noise", type=float, default=None, help="Relative sigma of multiplicative read noise (every forward pass)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="devsim")
def cli():
    """Device-aware training of Keras networks on simulated memristive synapses."""


@cli.command()
@device_options
@click.option("--wmax", type=float, default=1.0, show_default=True, help="Weight range: w = wmax (2g - 1).")
@click.option("--mapping", default="reference", show_default=True, help="reference (one device vs mid-range reference) or differential (pair).")
@click.option("--update", default="epoch", show_default=True, help="epoch: float epoch, then program (the original study); batch: program every mini-batch.")
@click.option("--pulses", default=None, help="sign, proportional or stochastic. Default: sign (epoch), stochastic (batch).")
@click.option("--max-pulses", type=int, default=None, help="Most pulses per device per update (default: N).")
@click.option("--dataset", default="mnist", show_default=True, help="mnist, mnist-5k, fashion-mnist or cifar10.")
@click.option("--data-dir", default=None, help="Folder with the dataset files (else $DEVSIM_DATA_DIR, the Keras cache, or download).")
@click.option("--epochs", type=int, default=20, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--lr", type=float, default=0.01, show_default=True, help="Learning rate of the inner optimizer.")
@click.option("--optimizer", default="sgd", show_default=True, help="sgd, adam, rmsprop, adagrad, adamw or nadam.")
@click.option("--hidden", callback=_hidden, default=None, help="Hidden widths, e.g. 128 or 256,128 (default 128; cifar10 256,128,64,32).")
@click.option("--activation", default="relu", show_default=True, help="Hidden-layer activation.")
@click.option("--bias/--no-bias", default=False, show_default=True, help="Give layers (float) biases; the original study had none.")
@click.option("--init", default="uniform", show_default=True, help="uniform random states, or glorot quantized to the nearest state.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--baselines/--no-baselines", default=True, show_default=True, help="Also train the linear-device and float references.")
@click.option("--out", default="results", show_default=True, help="Results root folder.")
@click.option("--name", default=None, help="Run folder name (default: built from the parameters).")
def run(**options):
    """Train a network on a device (and the linear and float references).

    Writes OUT/NAME/ with config.json, history.csv, states_*.npz, accuracy.png/pdf
    and conductance.png/pdf. Example: devsim run --ltp 0.8 --ltd 0.8
    """
    with _quiet_stderr():
        from devsim.run import RunConfig, run as run_experiment

    config = RunConfig(**options)
    folder = run_experiment(config, echo=click.echo, warn=lambda m: click.echo(m, err=True))
    import json

    record = json.loads((folder / "config.json").read_text())
    click.echo(f"\nfinal test accuracy ({record['dataset']['name']}, {config.epochs} epochs):")
    for model, final in record["final"].items():
        click.echo(f"  {model:>6}: {final['test_accuracy']:.4f}  (best {final['best_test_accuracy']:.4f})")
    click.echo(f"results: {folder}/")
    return 0 if record["status"] == "complete" else 1


@cli.command()
@device_options
@click.option("--out", default="results", show_default=True, help="Folder for conductance.png/pdf.")
@click.option("--name", default=None, help="Subfolder name (default: device_<parameters>).")
@click.option("--save", default=None, help="Also write the device as JSON to this file (for --device).")
def device(out, name, save, **options):
    """Show a device's LTP/LTD response and NeuroSim labels, without training."""
    from pathlib import Path

    import numpy as np

    with _quiet_stderr():
        from devsim.presets import save_device
        from devsim.run import RunConfig, _check_writable, plot_device_response

    config = RunConfig(**options, out=out)
    dev = config.make_device()
    folder = Path(out) / (name or f"device_{config.device_slug()}")
    nl_p, nl_d = dev.nl_labels
    n, n_d = dev.num_pulses, dev.num_pulses_ltd
    if dev.name:
        click.echo(f"{dev.name}: {dev.source or ''}")
    click.echo(f"A_p = {dev.a_p:g}, A_d = {dev.a_d:g}, states = {dev.states}/{dev.states_ltd} (N = {n}/{n_d} LTP/LTD pulses)")
    click.echo(f"NeuroSim labels: NL_LTP = {nl_p:+.2f}, NL_LTD = {nl_d:+.2f}")
    pulse, g = dev.response()
    steps_up, steps_down = np.diff(g[: n + 1]), -np.diff(g[n:])
    click.echo(
        f"LTP step: first {steps_up[0]:.4f}, last {steps_up[-1]:.4f};  "
        f"LTD step: first {steps_down[0]:.4f}, last {steps_down[-1]:.4f} (linear: {1 / n:.4f}/{1 / n_d:.4f})"
    )
    noise = {k: getattr(dev, k) for k in ("on_off", "c2c", "d2d", "d2d_range", "stuck_gmin", "stuck_gmax", "read_noise")}
    click.echo("non-idealities: " + ", ".join(f"{k} {v:g}" for k, v in noise.items()))
    ticks = np.linspace(0, n + n_d, 9).astype(int)
    click.echo("pulse   " + "  ".join(f"{p:>6d}" for p in ticks))
    click.echo("g       " + "  ".join(f"{g[p]:6.3f}" for p in ticks))
    _check_writable(Path(out))
    paths = plot_device_response(dev, folder / "conductance")
    click.echo("figure: " + ", ".join(str(p) for p in paths))
    if save:
        save_device(dev, save)
        click.echo(f"device: {save}")
    return 0


@cli.command()
def devices():
    """List the device presets (NeuroSim benchmark devices) with their sources."""
    from devsim.presets import preset_table

    rows = preset_table()
    header = f"{'name':<10} {'device':<17} {'levels':>6} {'NL LTP':>7} {'NL LTD':>7} {'A_p':>7} {'A_d':>7} {'on/off':>6} {'C2C':>5} {'NeuroSim':>8}  source"
    click.echo(header)
    for r in rows:
        click.echo(
            f"{r['name']:<10} {r['device']:<17} {r['levels']:>6d} {r['nl_ltp']:>7.3g} {r['nl_ltd']:>7.3g} {r['a_p']:>7.3g} "
            f"{r['a_d']:>7.3g} {r['on_off']:>6.3g} {r['c2c']:>5.1%} {r['neurosim_accuracy']:>8.0%}  {r['source']}"
        )
    click.echo("NeuroSim: online MNIST accuracy of its 400-100-10 MLP (MLP+NeuroSim V3.0 manual, Table II). "
               "Use: devsim run --device ag-si")
    return 0


def main(argv=None):
    """Console entry point: click, with one-line errors and exit status 2."""
    from devsim.data import DataError
    from devsim.errors import ConfigError

    try:
        status = cli.main(args=argv, prog_name="devsim", standalone_mode=False)
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except (ConfigError, DataError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    sys.exit(status if isinstance(status, int) else 0)


if __name__ == "__main__":
    main()
