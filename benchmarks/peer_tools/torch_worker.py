"""PyTorch and aihwkit workers (run in the comparison venv, /work/peers-venv).

    torch                 float PyTorch: the plain training loop, no DataLoader
    aihwkit-constantstep  aihwkit AnalogSGD on ConstantStepDevice tiles (SingleRPUConfig defaults)
    aihwkit-expstep       the same with ExpStepDevice

One process trains one tool on one network; see benchmarks/peers.py.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

TOOLS = ("torch", "aihwkit-constantstep", "aihwkit-expstep")


def build(tool, sizes):
    import torch
    from torch import nn

    layers = [nn.Flatten()]
    if tool == "torch":
        linear = lambda i, o: nn.Linear(i, o, bias=False)  # noqa: E731
    else:
        from aihwkit.nn import AnalogLinear
        from aihwkit.simulator.configs import ConstantStepDevice, ExpStepDevice, SingleRPUConfig

        device = {"aihwkit-constantstep": ConstantStepDevice, "aihwkit-expstep": ExpStepDevice}[tool]()
        linear = lambda i, o: AnalogLinear(i, o, bias=False, rpu_config=SingleRPUConfig(device=device))  # noqa: E731
    for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(linear(i, o))
        if k < len(sizes) - 2:
            layers.append(nn.ReLU())
    if tool == "torch":
        return nn.Sequential(*layers)
    from aihwkit.nn import AnalogSequential

    return AnalogSequential(*layers)


def optimizer_for(tool, model, lr):
    import torch

    if tool == "torch":
        return torch.optim.SGD(model.parameters(), lr=lr)
    from aihwkit.optim import AnalogSGD

    opt = AnalogSGD(model.parameters(), lr=lr)
    opt.regroup_param_groups(model)
    return opt


def main():
    args = common.parse_args()
    if args.tool not in TOOLS:
        raise SystemExit(f"unknown tool {args.tool}; one of {TOOLS}")
    common.pin_thread_env(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    for one in common.configs(args):
        run(one)


def run(args):
    import numpy as np
    import torch
    import torch.nn.functional as F

    torch.manual_seed(args.seed)
    x_np, y_np = common.load_data(args)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    n, b = len(y), args.batch
    sizes = [int(s) for s in args.net.split("-")]
    model = build(args.tool, sizes)
    opt = optimizer_for(args.tool, model, args.lr)
    generator = torch.Generator().manual_seed(args.seed)

    def train_epoch(steps=None):
        perm = torch.randperm(n, generator=generator)
        xs, ys = x[perm], y[perm]
        running, count = 0.0, 0
        for i, start in enumerate(range(0, n, b)):
            if steps is not None and i >= steps:
                break
            xb, yb = xs[start:start + b], ys[start:start + b]
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            running, count = running + loss.item(), count + 1
        return running / max(count, 1)

    with common.Clock() as warm:
        if args.warmup_epochs:
            for _ in range(args.warmup_epochs):
                train_epoch()
        else:
            train_epoch(args.warmup_steps)
    seconds, cpu, losses = [], [], []
    for _ in range(args.epochs):
        with common.Clock() as c:
            losses.append(train_epoch())
        seconds.append(c.wall)
        cpu.append(c.cpu)
    with torch.no_grad():
        accuracy = float((model(x[:1000]).argmax(1) == y[:1000]).float().mean())  # a sanity check, not timed
    versions = {"torch": torch.__version__, "numpy": np.__version__}
    if args.tool != "torch":
        import aihwkit

        versions["aihwkit"] = aihwkit.__version__
    common.emit({
        "tool": args.tool, "net": args.net, "threads": args.threads, "batch": b, "images": n,
        "epoch_seconds": seconds, "epoch_cpu_seconds": cpu, "warmup_seconds": warm.wall,
        "loss": losses, "train_accuracy": accuracy, "versions": versions,
        "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
    })


if __name__ == "__main__":
    main()
