"""The degradation problem at small scale: plain vs residual CIFAR-style networks of growing depth.

Explained in the chapter "ResNet, global average pooling and what came after"
(``book/06-resnet-and-beyond.md``), section "The degradation problem".

He et al. (2016, Fig. 1 and Fig. 6) train plain networks of 20 to 56 layers on CIFAR-10 and see
the deeper one reach a *higher training error*: not overfitting, an optimisation difficulty.
The residual networks of the same depths do not degrade. Here: MNIST 5k (4,000 training
images), :func:`convnets.models.plain_cifar` and :func:`convnets.models.resnet_cifar` of depths
8, 20 and 56 (width 16, 1 input channel), trained identically with the paper's recipe scaled
down: SGD with momentum 0.9, learning rate 0.1 divided by 10 at 50% and 75% of training, weight
decay 1e-4, batch 128, the same seeds and the same batch order for every network. The first two
epochs run at lr 0.01 (the paper warms up its 110-layer net this way): without it the 56-layer
residual network diverged at lr 0.1 (see :mod:`convnets.experiments.degradation_nowarmup`).

The full run trains 18 networks (three seeds) for 10 epochs. The saved results were computed in
two parts on a 2-core CPU shared with other heavy jobs: seeds 0 and 1 (12 networks, 6,332 s), then
seed 2 (6 networks, 3,148 s wall) with :func:`extend`, which
adds the missing seeds to the saved results without retraining the others, and saves each network
as soon as it is trained (``results/degradation.partial.json``), so that a later call resumes
there. What one seed costs on a CPU follows from the CPU time of one training step of each network,
measured by :func:`step_costs` (one thread) and saved with the results (``cpu_s_per_step``),
times the 320 steps each network makes; the run without warm-up (18 networks, 12 epochs) took 103 s on one GPU. The chapter reads the
saved results.

``run()`` returns per-epoch histories for every (kind, depth, seed) and a summary table;
``python -m convnets.experiments degradation`` saves them to ``results/degradation.json``.
"""
from __future__ import annotations

import platform
import time
from typing import Any, Callable

import torch

__all__ = ["CONFIG", "QUICK_CONFIG", "extend", "run", "step_costs", "summarise", "train_one"]

#: The full experiment (the figures in the chapter).
CONFIG: dict[str, Any] = {
    "depths": [8, 20, 56],
    "width": 16,
    "epochs": 10,
    "seeds": [0, 1, 2],
    "batch_size": 128,
    "lr": 0.1,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "milestones": [0.5, 0.75],  # fractions of the epochs where the learning rate drops 10x
    "warmup_epochs": 2,  # learning rate lr/10 for these first epochs (the paper's warm-up for ResNet-110)
    "train_images": 4000,
    "test_images": 1000,
}

#: The reduced size the tests run (seconds on a CPU).
QUICK_CONFIG: dict[str, Any] = dict(CONFIG, depths=[8, 14], width=4, epochs=1, seeds=[0], train_images=200,
                                     test_images=100)


def lr_factor(epoch: int, cfg: dict[str, Any]) -> float:
    """What the learning rate ``cfg["lr"]`` is multiplied by in ``epoch`` (0-based; :func:`fit`
    steps the scheduler once per epoch): 0.1 during the ``warmup_epochs`` (He et al. warm up
    ResNet-110 at 0.01 with a base of 0.1), then 1, divided by 10 at each milestone (the
    ``milestones`` are fractions of ``epochs``)."""
    milestones = [max(1, round(f * cfg["epochs"])) for f in cfg["milestones"]]
    if epoch < cfg.get("warmup_epochs", 0):
        return 0.1
    return 0.1 ** sum(epoch >= m for m in milestones)


def train_one(kind: str, depth: int, seed: int, cfg: dict[str, Any], split=None,
              device: str | torch.device | None = None) -> dict[str, list[float]]:
    """Train one ``kind`` (``"plain"`` or ``"residual"``) network of ``depth`` layers; return its
    :class:`convnets.train.History` as a dict (per-epoch train/val loss and accuracy)."""
    from convnets.data import TensorSplit, loaders, mnist5k
    from convnets.models import plain_cifar, resnet_cifar
    from convnets.train import fit, seed_everything

    if kind not in ("plain", "residual"):
        raise ValueError(f"kind must be 'plain' or 'residual'; got {kind!r}")
    split = split if split is not None else mnist5k()
    n = cfg["train_images"]
    if n < len(split.X_train):
        split = split.subset(per_class=n // split.num_classes, seed=0)
    m = cfg.get("test_images", len(split.X_test))
    if m < len(split.X_test):  # the test split is stratified but ordered: take every k-th image
        k = len(split.X_test) // m
        split = TensorSplit(split.X_train, split.y_train, split.X_test[::k][:m], split.y_test[::k][:m], split.classes)
    seed_everything(seed)
    factory = plain_cifar if kind == "plain" else resnet_cifar
    net = factory(depth=depth, in_channels=1, num_classes=10, width=cfg["width"])
    train_loader, test_loader = loaders(split, batch_size=cfg["batch_size"], seed=seed)
    opt = torch.optim.SGD(net.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                          weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: lr_factor(epoch, cfg))
    hist = fit(net, train_loader, test_loader, epochs=cfg["epochs"], optimizer=opt, scheduler=sched,
               device=device, verbose=False)
    return hist.to_dict()


def summarise(runs: list[dict[str, Any]], cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Per (kind, depth): the final training and test error (%) and training loss, averaged over
    the seeds, with their per-seed values."""
    summary = []
    for depth in cfg["depths"]:
        for kind in ("plain", "residual"):
            rs = [r["history"] for r in runs if r["kind"] == kind and r["depth"] == depth]
            tr = [100 * (1 - h["train_acc"][-1]) for h in rs]
            te = [100 * (1 - h["val_acc"][-1]) for h in rs]
            loss = [h["train_loss"][-1] for h in rs]
            summary.append({"kind": kind, "depth": depth,
                            "train_error": sum(tr) / len(tr), "test_error": sum(te) / len(te),
                            "train_error_per_seed": tr, "test_error_per_seed": te,
                            "final_train_loss": sum(loss) / len(loss), "final_train_loss_per_seed": loss,
                            "seconds_per_epoch": sum(sum(h["seconds"]) for h in rs) / len(rs) / cfg["epochs"]})
    return summary


def step_costs(cfg: dict[str, Any] | None = None, repeats: int = 4) -> dict[str, float]:
    """CPU seconds of one training step (forward, backward, SGD step) of every network of the
    recipe, on a batch of ``batch_size`` random 1x28x28 images, one thread: the median of
    ``repeats - 1`` timed steps after a warm-up step. Keys ``"plain-8"``, ``"residual-56"``, ..."""
    from convnets.models import plain_cifar, resnet_cifar

    cfg = cfg or CONFIG
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(cfg["batch_size"], 1, 28, 28, generator=gen)
        y = torch.randint(0, 10, (cfg["batch_size"],), generator=gen)
        out: dict[str, float] = {}
        for depth in cfg["depths"]:
            for kind, factory in (("plain", plain_cifar), ("residual", resnet_cifar)):
                torch.manual_seed(0)
                net = factory(depth=depth, in_channels=1, num_classes=10, width=cfg["width"]).train()
                opt = torch.optim.SGD(net.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                                      weight_decay=cfg["weight_decay"])
                times = []
                for _ in range(repeats):
                    t0 = time.process_time()
                    loss = torch.nn.functional.cross_entropy(net(x), y)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    times.append(time.process_time() - t0)
                out[f"{kind}-{depth}"] = sorted(times[1:])[len(times[1:]) // 2]
        return out
    finally:
        torch.set_num_threads(threads)


def _device_name(dev: torch.device) -> str:
    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{dev.type} ({platform.processor() or platform.machine()})"


def run(quick: bool = False, device: str | torch.device | None = None,
        config: dict[str, Any] | None = None, previous: dict[str, Any] | None = None,
        on_trained: Callable[[list[dict[str, Any]]], None] | None = None) -> dict[str, Any]:
    """Train every (kind, depth, seed) of :data:`CONFIG` (:data:`QUICK_CONFIG` when ``quick``,
    ``config`` when given).

    ``previous``: saved results of the same recipe (every config entry equal but ``seeds``); its
    runs of the wanted seeds are kept and only the missing ones are trained (seeded runs are
    deterministic on one machine, so this equals training all of them now).

    ``on_trained``: called with the list of the runs trained so far in this call after each one
    (:func:`extend` saves them, so that an interrupted run resumes where it stopped).

    Returns ``{"config", "runs": [{"kind", "depth", "seed", "history"}], "summary": [...],
    "device", "torch", "seconds"}``; ``summary`` has, per (kind, depth), the final training and
    test error in percent and the final training loss, averaged over the seeds, and their per-seed
    values (see :func:`summarise`). ``seconds`` counts only the runs trained in this call.
    """
    from convnets.data import mnist5k
    from convnets.utils import get_device

    cfg = QUICK_CONFIG if quick else (config or CONFIG)
    dev = get_device(device)
    split = mnist5k()
    done: dict[tuple[str, int, int], dict[str, Any]] = {}
    if previous is not None and not quick:
        same = {k: v for k, v in previous["config"].items() if k != "seeds"} == {
            k: v for k, v in cfg.items() if k != "seeds"}
        if not same:
            raise ValueError("previous results were computed with another recipe; recompute them all")
        done = {(r["kind"], r["depth"], r["seed"]): r for r in previous["runs"]}
    t0 = time.perf_counter()
    runs, trained = [], []
    for depth in cfg["depths"]:
        for kind in ("plain", "residual"):
            for seed in cfg["seeds"]:
                if (kind, depth, seed) in done:
                    runs.append(done[(kind, depth, seed)])
                    continue
                h = train_one(kind, depth, seed, cfg, split, dev)
                runs.append({"kind": kind, "depth": depth, "seed": seed, "history": h})
                trained.append(runs[-1])
                if on_trained is not None:
                    on_trained(list(trained))
    here = _device_name(dev)
    out = {"config": cfg, "runs": runs, "summary": summarise(runs, cfg), "device": here,
           "torch": torch.__version__, "seconds": time.perf_counter() - t0,
           "cpu_s_per_step": step_costs(cfg, repeats=2 if quick else 4)}
    if done:
        now = {r["seed"] for r in trained}
        earlier = sorted({k[2] for k in done} & set(cfg["seeds"]) - now)
        out["provenance"] = (f"seeds {earlier} from an earlier run "
                             f"({previous.get('device')}, {previous.get('seconds', 0):.0f} s); "
                             f"seeds {sorted(now)} trained now ({here}, {out['seconds']:.0f} s)")
        if previous.get("resumed"):
            out["provenance"] += f"; {previous['resumed']}"
    return out


def extend(device: str | torch.device | None = None) -> dict[str, Any]:
    """Train the seeds of :data:`CONFIG` that ``results/degradation.json`` lacks, keep the saved
    runs, and save the merged results (``python -c "from convnets.experiments import degradation;
    degradation.extend()"``).

    Each network trained is saved at once to ``results/degradation.partial.json``; a later call
    resumes from there (a run killed on a shared machine loses one network, not all of them), and
    the file is removed when the merged results are saved."""
    import json

    from convnets.experiments import results_dir
    from convnets.utils import atomic_write, get_device

    path = results_dir() / "degradation.json"
    partial_path = results_dir() / "degradation.partial.json"
    previous = json.loads(path.read_text()) if path.is_file() else None
    resumed: list[dict[str, Any]] = []
    if partial_path.is_file():
        partial = json.loads(partial_path.read_text())
        if previous is not None and partial["config"] == previous["config"]:
            resumed = partial["runs"]
            previous = dict(previous, runs=previous["runs"] + resumed,
                            resumed=f"{len(resumed)} networks resumed from a partial run ({partial['device']})")

    def save_partial(trained: list[dict[str, Any]]) -> None:
        atomic_write(partial_path, json.dumps({"config": previous["config"] if previous else CONFIG,
                                               "device": _device_name(get_device(device)),
                                               "runs": resumed + trained}))

    out = run(device=device, previous=previous, on_trained=save_partial)
    atomic_write(path, json.dumps(out, indent=1, sort_keys=True))
    partial_path.unlink(missing_ok=True)
    return out
