"""Forward + backward time of convnets.norm against torch's modules, on a ResNet-sized activation.

    python benchmarks/bench_norm.py [--batch 16] [--repeats 7] [--device cpu]

The activation is ResNet-50's first stage at 224x224: (N, 64, 56, 56). For each layer the
script times ``y = layer(x); y.backward(g)`` (training mode) and prints the median time over
``--repeats`` runs and the ratio ours / torch (> 1: ours is slower). Timings are wall-clock and
depend on the machine and its load: read the ratio, not the absolute figures.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from convnets import norm


def time_fwd_bwd(layer, x: torch.Tensor, g: torch.Tensor, repeats: int, fn=None) -> float:
    """Median seconds of one forward + backward pass."""
    def step():
        xi = x.detach().requires_grad_(True)
        y = fn(xi) if fn is not None else layer(xi)
        y.backward(g)
        if x.device.type == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up (allocator, kernels)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    dev = torch.device(args.device)
    torch.manual_seed(0)
    N, C, H, W = args.batch, 64, 56, 56
    x = torch.randn(N, C, H, W, device=dev)
    g = torch.randn_like(x)
    x_last = x.permute(0, 2, 3, 1).contiguous()  # (N, H, W, C): layer norm over channels, ConvNeXt-style
    g_last = g.permute(0, 2, 3, 1).contiguous()
    bn_w = torch.rand(C, device=dev, requires_grad=True)
    bn_b = torch.zeros(C, device=dev, requires_grad=True)
    cases = [
        ("BatchNorm2d(64), train", x, g, norm.BatchNorm2d(C).to(dev), nn.BatchNorm2d(C).to(dev), None),
        ("BatchNorm2d(64), hand-written backward", x, g, None, nn.BatchNorm2d(C).to(dev),
         lambda t: norm.BatchNormFunction.apply(t, bn_w, bn_b, 1e-5)),
        ("LayerNorm([64, 56, 56])", x, g, norm.LayerNorm((C, H, W)).to(dev), nn.LayerNorm((C, H, W)).to(dev), None),
        ("LayerNorm(64) on (N, 56, 56, 64)", x_last, g_last, norm.LayerNorm(C).to(dev), nn.LayerNorm(C).to(dev), None),
    ]
    print(f"forward + backward on {tuple(x.shape)} float32, device {dev}, threads {torch.get_num_threads()}, "
          f"median of {args.repeats}")
    print(f"{'layer':<40} {'convnets ms':>12} {'torch ms':>10} {'ratio':>7}")
    for name, xi, gi, ours, ref, fn in cases:
        t_ours = time_fwd_bwd(ours, xi, gi, args.repeats, fn)
        t_ref = time_fwd_bwd(ref, xi, gi, args.repeats)
        print(f"{name:<40} {1e3 * t_ours:>12.1f} {1e3 * t_ref:>10.1f} {t_ours / t_ref:>7.2f}")


if __name__ == "__main__":
    main()
