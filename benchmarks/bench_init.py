"""Cost of convnets.init: the probe against a plain forward+backward pass, and init_weights.

    python benchmarks/bench_init.py [--device cuda]

Prints median wall times (ms) for the chapter's 30-layer plain MLP and CNN. On a shared machine
the figures include the other processes' load: compare ratios measured in the same run.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from convnets.init import init_weights, plain_cnn, plain_mlp, probe
from convnets.utils import get_device


def _median_ms(fn, repeat: int, device: torch.device) -> float:
    times = []
    for _ in range(repeat + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times[1:])  # the first call warms up


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="auto")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    dev = get_device(args.device)
    torch.set_flush_denormal(True)
    g = torch.Generator().manual_seed(0)
    cases = [("MLP 30x256, batch 256", plain_mlp(30, 256), torch.rand(256, 1, 28, 28, generator=g)),
             ("CNN 30x16, batch 32", plain_cnn(30, 16), torch.rand(32, 1, 28, 28, generator=g))]
    print(f"device: {dev}, threads: {torch.get_num_threads()}")
    print(f"{'model':<24} {'fwd+bwd ms':>11} {'probe ms':>9} {'ratio':>6} {'init_weights ms':>16}")
    for name, net, X in cases:
        net.to(dev)
        X = X.to(dev)
        y = torch.randint(0, 10, (len(X),), generator=g).to(dev)
        init_weights(net, "he")

        def plain():
            loss = nn.functional.cross_entropy(net(X), y)
            torch.autograd.grad(loss, list(net.parameters()))

        t_plain = _median_ms(plain, args.repeat, dev)
        t_probe = _median_ms(lambda: probe(net, X, y), args.repeat, dev)
        t_init = _median_ms(lambda: init_weights(net, "he"), args.repeat, dev)
        print(f"{name:<24} {t_plain:>11.1f} {t_probe:>9.1f} {t_probe / t_plain:>6.2f} {t_init:>16.2f}")


if __name__ == "__main__":
    main()
