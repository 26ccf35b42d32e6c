"""The `devsim` command line: `devsim run`, `devsim device`.

Bad input exits with status 2 and one line ``Error: --option: what is allowed``,
before anything is written.
"""

from __future__ import annotations

import sys

import click

from devsim import __version__
from devsim.quiet import quiet_stderr


def _hidden(ctx, param, value):
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"must be comma-separated layer widths such as 128 or 256,128, got {value!r}") from None


# Every run option once: (flag, type, default, help). `run` takes one value of
# each; `sweep` takes a comma-separated list of values of any of them.
DEVICE_OPTIONS = [
    ("--device", str, None, "A preset (see `devsim devices`) or a device JSON file; other options override it."),
    ("--ltp", float, None, "LTP curvature A_p: > 0 saturating, < 0 accelerating, inf linear."),
    ("--ltd", float, None, "LTD curvature A_d (same conventions). Unset: inf."),
    ("--nl-ltp", float, None, "NeuroSim LTP label instead of --ltp (e.g. 2.4)."),
    ("--nl-ltd", float, None, "NeuroSim LTD label instead of --ltd (e.g. -4.88)."),
    ("--linear", "flag", False, "Linear device (A_p = A_d = inf)."),
    ("--states", int, None, "Conductance levels per device (N = states - 1 pulses). Default 101."),
    ("--states-ltd", int, None, "Levels of the LTD branch, if it differs."),
    ("--on-off", float, None, "On/off ratio Gmax/Gmin (default inf: Gmin = 0)."),
    ("--c2c", float, None, "Cycle-to-cycle sigma, fraction of range, per sqrt(pulse)."),
    ("--c2c-mode", str, None, "sqrt (NeuroSim: sigma*sqrt(n)) or step (sigma proportional to the step)."),
    ("--d2d", float, None, "Device-to-device sigma of the NL labels."),
    ("--d2d-range", float, None, "Device-to-device relative sigma of the conductance range."),
    ("--stuck-gmin", float, None, "Fraction of devices stuck at Gmin."),
    ("--stuck-gmax", float, None, "Fraction of devices stuck at Gmax."),
    ("--read-noise", float, None, "Relative sigma of multiplicative read noise (every forward pass)."),
]
TRAINING_OPTIONS = [
    ("--wmax", float, 1.0, "Weight range: w = wmax (2g - 1)."),
    ("--mapping", str, "reference", "reference (one device vs mid-range reference) or differential (pair)."),
    ("--update", str, "epoch", "epoch: float epoch, then program (the original study); batch: program every mini-batch."),
    ("--pulses", str, None, "sign, proportional or stochastic. Default: sign (epoch), stochastic (batch)."),
    ("--max-pulses", int, None, "Most pulses per device per update (default: N)."),
    ("--count-pulses/--no-count-pulses", "bool", None,
     "Log pulses applied and lost per layer and epoch. Default: on for epoch updates; off for batch updates, where it costs about a third of the device update."),
    ("--dataset", str, "mnist", "mnist, mnist-5k, fashion-mnist or cifar10."),
    ("--data-dir", str, None, "Folder with the dataset files (else $DEVSIM_DATA_DIR, the Keras cache, or download)."),
    ("--epochs", int, 20, "Training epochs."),
    ("--batch-size", int, 32, "Mini-batch size."),
    ("--lr", float, 0.01, "Learning rate of the inner optimizer."),
    ("--optimizer", str, "sgd", "sgd, adam, rmsprop, adagrad, adamw or nadam."),
    ("--hidden", "hidden", None, "Hidden widths, e.g. 128 or 256,128 (default 128; cifar10 256,128,64,32)."),
    ("--activation", str, "relu", "Hidden-layer activation."),
    ("--crop", int, None, "Keep the central CROP x CROP pixels (20: NeuroSim's 400 inputs)."),
    ("--bias/--no-bias", "bool", False, "Give layers (float) biases; the original study had none."),
    ("--init", str, "uniform", "uniform random states, or glorot quantized to the nearest state."),
    ("--seed", int, 0, "Seed of initial states, data order and all noise."),
    ("--baselines/--no-baselines", "bool", True, "Also train the linear-device and float references."),
]


def _option(flag, kind, default, help, as_list=False):
    if as_list:  # sweep: text, parsed into a list of values per field
        if kind in ("flag", "bool"):
            return click.option(flag, default=None, type=bool, help=f"{help} Fixed for the whole sweep.")
        sep = "/-separated list" if kind == "hidden" else "comma-separated list"
        return click.option(flag.split("/")[0], default=None, help=f"{help} A {sep} sweeps it.")
    if kind == "flag":
        return click.option(flag, is_flag=True, help=help)
    if kind == "bool":
        return click.option(flag, default=default, show_default=True, help=help)
    if kind == "hidden":
        return click.option(flag, callback=_hidden, default=None, help=help)
    return click.option(flag, type=kind, default=default, show_default=default is not None, help=help)


def options(specs, as_list=False):
    def decorate(f):
        for spec in reversed(specs):
            f = _option(*spec, as_list=as_list)(f)
        return f

    return decorate


device_options = options(DEVICE_OPTIONS)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="devsim")
def cli():
    """Device-aware training of Keras networks on simulated memristive synapses."""


@cli.command()
@options(DEVICE_OPTIONS + TRAINING_OPTIONS)
@click.option("--out", default="results", show_default=True, help="Results root folder.")
@click.option("--name", default=None, help="Run folder name (default: built from the parameters).")
def run(**options):
    """Train a network on a device (and the linear and float references).

    Writes OUT/NAME/ with config.json, history.csv, states_*.npz, accuracy.png/pdf
    and conductance.png/pdf. Example: devsim run --ltp 0.8 --ltd 0.8
    """
    with quiet_stderr():
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
@options(DEVICE_OPTIONS + TRAINING_OPTIONS, as_list=True)
@click.option("--seeds", default=None, help="Seeds to repeat every configuration with, e.g. 0,1,2 (same as --seed 0,1,2).")
@click.option("--file", "sweep_file", default=None, help="TOML sweep file ([fixed] and [sweep] tables); options given here override [fixed].")
@click.option("--tie", "ties", multiple=True, help="FIELD=OTHER: FIELD takes the swept OTHER's value, e.g. --tie ltd=ltp (symmetric).")
@click.option("--workers", type=int, default=1, show_default=True, help="Local processes running runs in parallel.")
@click.option("--stack", type=int, default=8, show_default=True,
              help="Train up to STACK runs that differ only in A_p/A_d together as one model (same results, faster); 1: off.")
@click.option("--scheduler", default=None, help="Address of a running Dask scheduler (tcp://host:8786) to run the runs on.")
@click.option("--out", default="results", show_default=True, help="Results root folder.")
@click.option("--name", default=None, help="Sweep folder name (default: from the file name or the swept options).")
def sweep(seeds, sweep_file, ties, workers, stack, scheduler, out, name, **options):
    """Run the grid of every combination of the listed values; resumable.

    Example: devsim sweep --ltp 0.1,0.5,inf --ltd 0.1,0.5,inf --seeds 0,1,2 --epochs 20.
    Writes OUT/NAME/ with sweep.json, summary.csv and one run folder per configuration;
    running it again skips finished runs.
    """
    from devsim.sweep import Sweep, parse_list, run_sweep

    if seeds is not None:
        if options.get("seed") is not None:
            raise click.UsageError("give --seeds or --seed, not both")
        options["seed"] = seeds
    swept, fixed = {}, {}
    for key, text in options.items():
        if text is None:
            continue
        if isinstance(text, bool):
            fixed[key] = text
            continue
        values = parse_list(key, text)
        (swept if len(values) > 1 else fixed)[key] = values if len(values) > 1 else values[0]
    tie = {}
    for text in ties:
        field, _, source = text.partition("=")
        if not source:
            raise click.BadParameter(f"must be FIELD=OTHER such as ltd=ltp, got {text!r}", param_hint="'--tie'")
        tie[field.strip().replace("-", "_")] = source.strip().replace("-", "_")
    if sweep_file:
        base = Sweep.from_file(sweep_file)
        fixed_all = {k: v for k, v in {**base.fixed, **fixed}.items() if k not in swept}
        spec = Sweep(name or base.name, {**base.parameters, **swept}, fixed_all, {**base.ties, **tie})
    else:
        default = "sweep_" + "_".join(k for k in swept if k != "seed") if len(swept) > ("seed" in swept) else "sweep_seeds"
        spec = Sweep(name or default, swept, fixed, tie)
    with quiet_stderr():
        import devsim.run  # noqa: F401 - load TensorFlow quietly
    folder = run_sweep(
        spec, out=out, workers=workers, scheduler=scheduler, stack=stack, echo=click.echo, warn=lambda m: click.echo(m, err=True)
    )
    click.echo(f"results: {folder}/ (summary.csv; figures: devsim plot {folder})")
    return 0


@cli.command()
@click.argument("csv_file", metavar="CSV")
@click.option("--out", default=None, help="Folder for device.json and fit.png/pdf (default: results/fit_<csv name>).")
@click.option("--name", default=None, help="Device name (default: the CSV file name).")
def fit(csv_file, out, name):
    """Fit measured pulse data (CSV: pulse, conductance, direction[, cycle]) to the device model.

    Writes device.json (use it with --device) and fit.png/pdf overlaying data and curves.
    """
    from pathlib import Path

    with quiet_stderr():
        from devsim import fitting

    data = fitting.read_pulse_csv(csv_file)
    result = fitting.fit_pulse_data(data, source=str(csv_file))
    folder = Path(out or f"results/fit_{Path(csv_file).stem}")
    paths = fitting.write_fit(result, data, folder, name=name)
    click.echo(result.summary())
    click.echo("written: " + ", ".join(str(p) for p in paths.values()))
    click.echo(f"next: devsim run --device {paths['device']}")
    return 0


@cli.command()
@device_options
@click.option("--out", default="results", show_default=True, help="Folder for conductance.png/pdf.")
@click.option("--name", default=None, help="Subfolder name (default: device_<parameters>).")
@click.option("--save", default=None, help="Also write the device as JSON to this file (for --device).")
def device(out, name, save, **options):  # noqa: F811 - the command, not the option
    """Show a device's LTP/LTD response and NeuroSim labels, without training."""
    from pathlib import Path

    import numpy as np

    with quiet_stderr():
        from devsim.presets import save_device
        from devsim.figures.conductance import plot_device_response
        from devsim.run import RunConfig, _check_writable

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


@cli.command()
@click.argument("folder")
@click.option("--out", default=None, help="Where to write the figures (default: the run folder, or <sweep>/figures).")
def plot(folder, out):
    """Regenerate every figure of a run or sweep results folder (never retrains).

    A sweep gets accuracy curves per swept value, final accuracy against each swept
    option, (A_p, A_d) heatmaps and accuracy against states; a run gets accuracy,
    conductance, prediction grids and confusion matrices. An unfinished run
    (NAME.partial) is drawn as far as it got, with a note on stderr.
    """
    from pathlib import Path

    if not Path(folder).is_dir():
        raise click.BadParameter(f"{folder} is not a folder", param_hint="'FOLDER'")
    with quiet_stderr():
        from devsim.figures import ResultsError, make_figures

    try:
        paths = make_figures(folder, out=out, warn=lambda m: click.echo(m, err=True))
    except ResultsError as exc:  # a file that is not what devsim writes, or an --out that cannot be written
        raise click.UsageError(str(exc)) from None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'FOLDER'") from None
    for path in paths:
        click.echo(str(path))
    return 0


def main(argv=None):
    """Console entry point: click, with one-line errors and exit status 2."""
    from devsim.data import DataError
    from devsim.errors import ConfigError
    from devsim.fitting import FitError

    try:
        status = cli.main(args=argv, prog_name="devsim", standalone_mode=False)
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except (ConfigError, DataError, FitError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    sys.exit(status if isinstance(status, int) else 0)


if __name__ == "__main__":
    main()
