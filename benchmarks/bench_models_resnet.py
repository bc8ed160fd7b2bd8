"""Speed of the chapter-6 models (book/06-resnet-and-beyond.md): prints figures, asserts nothing.

    python benchmarks/bench_models_resnet.py [--device cuda]

1. One training step (forward + backward, batch 128, 28x28 MNIST-sized input) of the CIFAR-style
   plain and residual networks at the degradation experiment's depths, and the implied time of
   an epoch over MNIST 5k's 4,000 training images.
2. Inference latency of the ImageNet-sized models (batch 8, 224x224; Xception at 299x299) with
   their parameter and multiply-add counts.
Timings depend on the machine and on its load: report them with both.
"""
from __future__ import annotations

import argparse
import time

import torch

from convnets.flops import count_macs
from convnets.models import create_model, plain_cifar, resnet_cifar
from convnets.utils import count_parameters, get_device


def _time(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default=None)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    dev = get_device(args.device)
    print(f"device {dev}, torch {torch.__version__}, threads {torch.get_num_threads()}")

    print("\n1. training step, batch 128, 1x28x28, width 16")
    x = torch.randn(128, 1, 28, 28, device=dev)
    y = torch.randint(0, 10, (128,), device=dev)
    for depth in (8, 20, 56):
        for factory in (plain_cifar, resnet_cifar):
            net = factory(depth=depth).to(dev)
            opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)

            def step():
                opt.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(net(x), y).backward()
                opt.step()

            t = _time(step, args.repeats, dev)
            print(f"  {factory.__name__:12s} depth {depth:3d}: {1e3 * t:8.1f} ms/step, "
                  f"~{t * 4000 / 128:6.1f} s per MNIST-5k epoch, {count_parameters(net):,} params")

    print("\n2. inference, batch 8")
    for name, res in (("resnet18", 224), ("resnet50", 224), ("se_resnet50", 224), ("xception", 299),
                      ("mobilenet_v2", 224), ("efficientnet_b0", 224)):
        net = create_model(name).to(dev).eval()
        xb = torch.randn(8, 3, res, res, device=dev)
        with torch.no_grad():
            t = _time(lambda: net(xb), args.repeats, dev)
        print(f"  {name:16s} {res}x{res}: {1e3 * t / 8:7.1f} ms/image, {count_parameters(net) / 1e6:6.2f} M params, "
              f"{count_macs(net, (3, res, res)) / 1e9:5.2f} GMACs")


if __name__ == "__main__":
    main()
