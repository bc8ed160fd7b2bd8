"""The training loop's overhead: convnets.train.fit against a bare PyTorch loop doing the same
steps (zero_grad, forward, loss, backward, step) on the same data, model and optimizer.

    python benchmarks/bench_train_loop.py [--device cpu|cuda] [--epochs 3] [--repeats 3]

Prints seconds per epoch for each and the ratio fit / bare (1.00 = no overhead). Times are the
median of the repeats; the runs alternate so that drifts in machine load hit both alike.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from convnets import data, models, train, utils


def bare_loop(net, loader, opt, epochs, dev):
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        net.train()
        for X, y in loader:
            X, y = X.to(dev), y.to(dev)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(X), y)
            loss.backward()
            opt.step()
    if dev.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--model", default="simple_cnn")
    args = p.parse_args()
    dev = utils.get_device(args.device)
    split = data.mnist5k()
    loader = data.make_loader(split.X_train, split.y_train, batch_size=128, seed=0)
    times = {"bare": [], "fit": []}
    for r in range(args.repeats + 1):  # the first round warms up and is not counted
        for name in (("bare", "fit") if r % 2 else ("fit", "bare")):
            torch.manual_seed(0)
            net = models.create_model(args.model).to(dev)
            opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
            t0 = time.perf_counter()
            if name == "bare":
                bare_loop(net, loader, opt, args.epochs, dev)
            else:
                train.fit(net, loader, epochs=args.epochs, optimizer=opt, device=dev, verbose=False)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
            if r:
                times[name].append((time.perf_counter() - t0) / args.epochs)
    bare, fit = statistics.median(times["bare"]), statistics.median(times["fit"])
    print(f"device {dev} ({torch.cuda.get_device_name() if dev.type == 'cuda' else 'CPU, ' + str(torch.get_num_threads()) + ' threads'}), "
          f"model {args.model}, 4,000 MNIST-5k images per epoch, batch 128")
    print(f"bare loop : {bare:.3f} s/epoch")
    print(f"fit       : {fit:.3f} s/epoch")
    print(f"ratio fit/bare: {fit / bare:.3f} (overhead {100 * (fit / bare - 1):+.1f}%)")


if __name__ == "__main__":
    main()
