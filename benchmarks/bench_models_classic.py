"""Parameters, GMACs and CPU inference time of the classic models (chapter 05).

    python benchmarks/bench_models_classic.py [--repeats 3]

Prints one row per model: parameters, MACs per image (torch.utils.flop_counter), and the median
wall time of a forward pass in eval mode (batch 1 at 224x224 for the ImageNet models, batch 128
at 28x28 for the narrowed ones) on the CPU with torch's default threads. Timings depend on the
machine and on its load: they are printed, never asserted.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from convnets.flops import count_macs
from convnets.models import create_model
from convnets.utils import count_parameters

MODELS = [
    ("lenet5", {}, (1, 1, 32, 32)),
    ("alexnet_mini", {}, (128, 1, 28, 28)),
    ("vgg_mini", {}, (128, 1, 28, 28)),
    ("googlenet_mini", {}, (128, 1, 28, 28)),
    ("alexnet", {}, (1, 3, 224, 224)),
    ("googlenet", {"aux_logits": False}, (1, 3, 224, 224)),
    ("vgg11", {}, (1, 3, 224, 224)),
    ("vgg16", {}, (1, 3, 224, 224)),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'model':16s} {'params':>13s} {'MMACs/img':>10s} {'input':>18s} {'ms/forward':>11s}")
    for name, kwargs, shape in MODELS:
        torch.manual_seed(0)
        net = create_model(name, **kwargs).eval()
        macs = count_macs(net, shape[1:])
        x = torch.randn(*shape)
        times = []
        with torch.no_grad():
            net(x)  # warm-up
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                net(x)
                times.append(time.perf_counter() - t0)
        print(f"{name:16s} {count_parameters(net):13,d} {macs / 1e6:10.1f} {str(tuple(shape)):>18s} "
              f"{1000 * statistics.median(times):11.1f}")
        del net


if __name__ == "__main__":
    main()
