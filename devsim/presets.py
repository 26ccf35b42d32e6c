"""Published devices, and device JSON files.

The presets are the benchmark devices of the MLP+NeuroSim V3.0 manual (section
9, Table II, V3.0 @32 nm; experiments/neurosim_benchmark_devices.csv, docs/devices.md section 6):
levels, NeuroSim NL labels for LTP/LTD, on/off ratio and C2C sigma, with the
online MNIST accuracy NeuroSim reports for its 400-100-10 MLP. Where the table
gives a bound ("<1 %") the bound is used; where it gives a range of levels
("100-120") its lower end.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from devsim import io
from devsim.devices import Device, ExpDevice, device_from_config
from devsim.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Preset:
    """One published device.

    Args:
        key: the name devsim uses (``--device ag-si``).
        device: the table's device name.
        source: the paper the parameters come from.
        levels: conductance levels.
        nl_ltp: NeuroSim LTP nonlinearity label.
        nl_ltd: NeuroSim LTD nonlinearity label.
        on_off: Gmax/Gmin.
        c2c: cycle-to-cycle sigma, fraction of the conductance range.
        neurosim_accuracy: online MNIST accuracy NeuroSim reports (fraction).
        note: how a table entry was read, where it needed reading.
    """

    key: str
    device: str
    source: str
    levels: int
    nl_ltp: float
    nl_ltd: float
    on_off: float
    c2c: float
    neurosim_accuracy: float
    note: str = ""

    def to_device(self) -> ExpDevice:
        return ExpDevice.from_nl(
            self.nl_ltp, self.nl_ltd, self.levels, on_off=self.on_off, c2c=self.c2c, name=self.key,
            source=f"{self.device}, {self.source} (MLP+NeuroSim V3.0 manual, Table II)",
        )


PRESETS = {
    p.key: p
    for p in [
        Preset("ag-si", "Ag:a-Si", "Jo et al., Nano Lett. 2010", 97, 2.4, -4.88, 12.5, 0.035, 0.72),
        Preset("taox-hfox", "TaOx/HfOx", "Wu et al., VLSI 2018", 128, 0.04, -0.63, 10.0, 0.037, 0.80),
        Preset("pcmo", "PCMO", "Park et al., IEDM 2013", 50, 3.68, -6.76, 6.84, 0.01, 0.33, "C2C '<1 %' taken as 1 %"),
        Preset("alox-hfo2", "AlOx/HfO2", "Woo et al., IEEE EDL 2016", 40, 1.94, -0.61, 4.43, 0.05, 0.20),
        Preset("gst-pcm", "GST PCM", "Kuzum et al., Nano Lett. 2011", 100, 0.105, 2.4, 19.8, 0.015, 0.89,
               "levels '100-120' taken as 100"),
        Preset("epiram", "EpiRAM (Ag:SiGe)", "Choi et al., Nat. Mater. 2018", 64, 0.5, -0.5, 50.2, 0.02, 0.92),
        Preset("hzo-fefet", "HZO FeFET", "Jerry et al., IEDM 2017", 32, 1.75, 1.46, 45.0, 0.005, 0.88,
               "C2C '<0.5 %' taken as 0.5 %"),
    ]
}


def save_device(device: Device, path) -> None:
    """Write a device as JSON (atomic); `load_device` reads it back."""
    io.write_json(path, device.get_config())


def load_device(spec: str, option: str = "--device") -> Device:
    """A preset name (``ag-si``) or a device JSON file (``mydevice.json``) of any kind.

    The file's ``"kind"`` (`devsim.devices.DEVICE_KINDS`, default ``"exp"``)
    chooses the class that reads it.

    Raises:
        ConfigError: one line naming ``option`` and what is allowed.
    """
    if spec in PRESETS:
        return PRESETS[spec].to_device()
    path = Path(spec)
    if not path.suffix == ".json" and not path.exists():
        raise ConfigError(f"{option}: unknown device {spec!r}; use a preset ({', '.join(PRESETS)}) or a .json file")
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{option}: no such file {spec}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{option}: {spec} is not a readable JSON file ({exc})") from None
    known = {"kind", "a_p", "a_d", "nl_ltp", "nl_ltd", "states", "states_ltd"}
    if not isinstance(config, dict) or not known & set(config):
        unknown = f"; unknown key {sorted(config)[0]!r}" if isinstance(config, dict) and config else ""
        raise ConfigError(f"{option}: {spec} holds no device{unknown} (expected a JSON object with keys such as "
                          "a_p, a_d or nl_ltp, nl_ltd, states)")
    try:
        device = device_from_config(config)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{option}: {spec}: {' '.join(str(exc).split())}") from None
    for field in ("a_p", "a_d"):
        if isinstance(device, ExpDevice) and np.ndim(getattr(device, field)) > 0:
            raise ConfigError(f"{option}: {spec}: {field}: must be one number in a device file (one value per "
                              "device is for the Python API, where it broadcasts against a weight array)")
    if device.name:
        io.check_name(f"{option}: {spec}: name", device.name)
    return device if device.name else dataclasses.replace(device, name=path.stem)


def preset_table() -> list[dict]:
    """Rows for `devsim devices`: key, device, levels, NL labels, on/off, C2C, source."""
    rows = []
    for p in PRESETS.values():
        d = p.to_device()
        rows.append({
            "name": p.key, "device": p.device, "levels": p.levels, "nl_ltp": p.nl_ltp, "nl_ltd": p.nl_ltd,
            "a_p": d.a_p, "a_d": d.a_d, "on_off": p.on_off, "c2c": p.c2c,
            "neurosim_accuracy": p.neurosim_accuracy, "source": p.source,
        })
    return rows
