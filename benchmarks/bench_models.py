"""Throughput of our models against their torchvision twins, in the same process.

    python benchmarks/bench_models.py [--device cpu] [--batches 1 32] [--repeats 5] [--models resnet18 vgg11 ...]
    python benchmarks/bench_models.py --device cuda --models resnet50 --batches 64 --amp bf16 --channels-last

For each model with a torchvision twin: images per second for the forward pass (eval, no grad)
and for forward+backward (train), at each batch size, ours and torchvision's, and the ratio
ours/torchvision (1.00 = same speed). ImageNet models run at 224x224. The two models are timed
in alternation (the order flips every round); throughputs are medians over the rounds, and the
ratio is the median over the rounds of the ratio within each round, so that a change in machine
load hits both alike. Same architecture, same cost: every ratio should be close to 1. On a GPU,
``--amp bf16|fp16`` runs under autocast and ``--channels-last`` converts models and inputs: the
ResNet-50 line at batch 64 is the training-throughput benchmark on synthetic 224x224 data.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision

from convnets import models, utils

# ours, torchvision's, input size
PAIRS = {
    "alexnet": ("alexnet", "alexnet", 224),
    "googlenet": ("googlenet", "googlenet", 224),
    "vgg11": ("vgg11", "vgg11", 224),
    "vgg16": ("vgg16", "vgg16", 224),
    "vgg11_bn": ("vgg11_bn", "vgg11_bn", 224),
    "resnet18": ("resnet18", "resnet18", 224),
    "resnet34": ("resnet34", "resnet34", 224),
    "resnet50": ("resnet50", "resnet50", 224),
    "resnet101": ("resnet101", "resnet101", 224),
    "resnet152": ("resnet152", "resnet152", 224),
    "mobilenet_v2": ("mobilenet_v2", "mobilenet_v2", 224),
    "efficientnet_b0": ("efficientnet_b0", "efficientnet_b0", 224),
}
# the twin configurations where our default follows the paper and torchvision's does not
OURS_KW = {"googlenet": dict(batch_norm=True, branch3_kernel=3, lrn=False, aux_logits=False)}
TV_KW = {"googlenet": dict(aux_logits=False, init_weights=True)}
DEFAULT = ["alexnet", "vgg11", "resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0"]


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


AMP = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def time_once(net: torch.nn.Module, x: torch.Tensor, train: bool, amp: str = "none") -> float:
    dev = x.device
    dtype = AMP[amp]
    _sync(dev)
    t0 = time.perf_counter()
    with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
        if train:
            net.train()
            net.zero_grad(set_to_none=True)
            out = net(x)
            out = out[0] if isinstance(out, (tuple, list)) else out
            out.float().sum().backward()
        else:
            net.eval()
            with torch.no_grad():
                net(x)
    _sync(dev)
    return time.perf_counter() - t0


def bench_pair(name: str, batch: int, repeats: int, dev: torch.device, amp: str = "none",
               channels_last: bool = False) -> dict:
    ours_name, tv_name, size = PAIRS[name]
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    ours = models.create_model(ours_name, **OURS_KW.get(name, {})).to(dev, memory_format=fmt)
    theirs = getattr(torchvision.models, tv_name)(weights=None, **TV_KW.get(name, {})).to(dev, memory_format=fmt)
    x = torch.randn(batch, 3, size, size, device=dev).contiguous(memory_format=fmt)
    row = {"model": name, "batch": batch}
    for mode in ("forward", "train"):
        t = {"ours": [], "tv": []}
        for r in range(repeats + 1):  # round 0 warms up
            for key, net in (("ours", ours), ("tv", theirs)) if r % 2 else (("tv", theirs), ("ours", ours)):
                dt = time_once(net, x, mode == "train", amp)
                if r:
                    t[key].append(dt)
        o, v = statistics.median(t["ours"]), statistics.median(t["tv"])
        # the ratio pairs the two timings of each round (taken back to back), so that the
        # machine's drifts between rounds cancel; its median over the rounds is reported
        paired = [tv_i / o_i for o_i, tv_i in zip(t["ours"], t["tv"])]
        row[f"{mode}_ours"], row[f"{mode}_tv"], row[f"{mode}_ratio"] = batch / o, batch / v, statistics.median(paired)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--models", nargs="+", default=DEFAULT, choices=sorted(PAIRS) + ["all"])
    p.add_argument("--amp", default="none", choices=sorted(AMP), help="autocast dtype (GPU)")
    p.add_argument("--channels-last", action="store_true", help="channels_last models and inputs")
    args = p.parse_args()
    if args.models == ["all"]:
        args.models = list(PAIRS)
    dev = utils.get_device(args.device)
    available = set(models.list_models())
    what = f"{torch.cuda.get_device_name()}" if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {dev} ({what}); torch {torch.__version__}, torchvision {torchvision.__version__}; "
          f"amp {args.amp}, channels_last {args.channels_last}; median of {args.repeats} runs, images/s")
    print(f"{'model':<16}{'batch':>6} | {'fwd ours':>9} {'fwd tv':>9} {'ratio':>6} | {'f+b ours':>9} {'f+b tv':>9} {'ratio':>6}")
    for name in args.models:
        if PAIRS[name][0] not in available:
            print(f"{name:<16} (not in convnets.models)")
            continue
        for b in args.batches:
            r = bench_pair(name, b, args.repeats, dev, args.amp, args.channels_last)
            print(f"{name:<16}{b:>6} | {r['forward_ours']:>9.1f} {r['forward_tv']:>9.1f} {r['forward_ratio']:>6.2f} | "
                  f"{r['train_ours']:>9.1f} {r['train_tv']:>9.1f} {r['train_ratio']:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
