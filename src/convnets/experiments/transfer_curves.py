"""Transfer from MNIST 5k to scikit-learn's UCI digits (upsampled to 28x28): accuracy against
the number of labels per class for four ways of using the source model, over several seeds.

Explained in the chapter "Transfer learning" (``book/07-transfer-learning.md``).

Methods (all start from :func:`convnets.experiments.source_model.load_source_model` except
``scratch``, and the trained ones use Adam for the same number of steps):

- ``scratch``: the same architecture, randomly initialised, every layer trained;
- ``probe``: backbone frozen (batch norms in eval mode), a new linear head fitted by full-batch
  L-BFGS to the logistic-regression objective (:func:`convnets.transfer.fit_logistic_regression`
  on standardised features, the standardisation folded into the head); ``sklearn``:
  scikit-learn's ``LogisticRegression`` on the same features; ``probe_adam``: the same frozen
  network with its head trained by Adam for the same number of steps as the other methods;
- ``last_block``: ``layer3`` and a new head trained, the rest frozen;
- ``full``: everything trained, with per-stage learning rates ``lr / 2.6**k`` (ULMFiT).

Summaries give the mean and the sample standard deviation (``ddof=1``) over the seeds, with
the range. The sweep over how many stages to retrain (digits and inverted digits) is the
experiment :mod:`convnets.experiments.transfer_sweep`.

``python -m convnets.experiments transfer_curves`` writes ``results/transfer_curves.json``.
"""
from __future__ import annotations

import math
import time

import torch

__all__ = ["PER_CLASS", "SEEDS", "METHODS", "CONFIG", "train_target", "run"]

PER_CLASS: list = [1, 5, 10, 50, "all"]
SEEDS = [0, 1, 2]
METHODS = ["scratch", "probe", "last_block", "full"]
#: Methods trained by Adam through :func:`train_target` ("probe" is a logistic regression).
ADAM_METHODS = ["scratch", "probe_adam", "last_block", "full"]
CONFIG = {
    "steps": 200,          # Adam steps per run, whatever the number of labels
    "batch_size": 64,      # or all the images when there are fewer
    "lr": 2e-3,            # head / scratch learning rate
    "probe_lr": 1e-2,      # a linear head alone tolerates (and needs) a larger step
    "decay": 2.6,          # ULMFiT: each earlier stage learns 2.6 times more slowly
    "C": 1.0,              # scikit-learn's inverse L2 strength, on standardised features
}


def _epochs_for(n: int, steps: int, batch_size: int) -> int:
    return max(1, math.ceil(steps / math.ceil(n / batch_size)))


def train_target(method: str, split, seed: int, source_state: dict, steps: int, retrain: int | None = None,
                 device: str = "cpu") -> tuple[torch.nn.Module, float]:
    """Train one model on ``split`` (a :class:`convnets.data.TensorSplit`) by ``method`` and return
    ``(model, test accuracy)``. ``retrain=s`` (method ``"stages"``) trains the last ``s`` stages."""
    from ..data import loaders
    from ..train import evaluate, fit, seed_everything
    from ..transfer import freeze, param_groups, replace_head, stages
    from .source_model import build_source_model

    seed_everything(seed)
    model = build_source_model()
    if method != "scratch":
        model.load_state_dict(source_state)
        replace_head(model, split.num_classes)
    names = [n for n, _ in stages(model)]
    lr = CONFIG["lr"]
    if method == "scratch":
        groups = model.parameters()
    elif method == "probe_adam":
        freeze(model)
        lr = CONFIG["probe_lr"]
        groups = param_groups(model, lr)
    elif method == "last_block":
        freeze(model, "layer2")
        groups = param_groups(model, lr, CONFIG["decay"])
    elif method == "full":
        groups = param_groups(model, lr, CONFIG["decay"])
    elif method == "stages":
        if retrain is None or not 1 <= retrain <= len(names):
            raise ValueError(f"retrain must be between 1 and {len(names)}; got {retrain!r}")
        if retrain < len(names):
            freeze(model, names[-retrain - 1])
        groups = param_groups(model, lr, CONFIG["decay"])
    else:
        raise ValueError(f"unknown method {method!r}; choose from {ADAM_METHODS + ['stages']}")
    n = len(split.y_train)
    bs = min(CONFIG["batch_size"], n)
    train_loader, test_loader = loaders(split, batch_size=bs, seed=seed)
    opt = torch.optim.Adam(groups, lr=lr)
    fit(model, train_loader, None, epochs=_epochs_for(n, steps, bs), optimizer=opt, device=device, verbose=False)
    return model, evaluate(model, test_loader)["acc"]


def _stage_change(model: torch.nn.Module, source_state: dict) -> dict[str, float]:
    """Relative change ``||W - W_source|| / ||W_source||`` of each stage's weights (head excluded)."""
    from ..transfer import stages

    out = {}
    state = model.state_dict()
    for name, _ in stages(model)[:-1]:
        prefixes = tuple(p + "." for p in name.split("+"))
        keys = [k for k in source_state if k.startswith(prefixes) and k.endswith("weight")]
        num = sum(float((state[k].cpu() - source_state[k]).pow(2).sum()) for k in keys)
        den = sum(float(source_state[k].pow(2).sum()) for k in keys)
        out[name] = math.sqrt(num / den)
    return out


def probe_logistic(source_state: dict, split, C: float) -> tuple[torch.nn.Module, float]:
    """The source network with its backbone frozen and a new head fitted as a logistic regression
    on standardised features (the standardisation folded into the head's weights).
    Returns ``(model, test accuracy)``."""
    from ..data import loaders
    from ..train import evaluate
    from ..transfer import extract_features, fit_logistic_regression, freeze, replace_head
    from .source_model import build_source_model

    model = build_source_model()
    model.load_state_dict(source_state)
    replace_head(model, split.num_classes)
    freeze(model)
    F = extract_features(model, split.X_train).double()
    mu, sd = F.mean(0), F.std(0, unbiased=False).clamp_min(1e-12)
    lin = fit_logistic_regression(((F - mu) / sd).float(), split.y_train, split.num_classes, C=C)
    with torch.no_grad():  # W ((x - mu) / sd) + b  =  (W / sd) x + (b - (W / sd) mu)
        W = lin.weight.double() / sd
        model.fc.weight.copy_(W.float())
        model.fc.bias.copy_((lin.bias.double() - W @ mu).float())
    return model, evaluate(model, loaders(split)[1])["acc"]


def _probe_sklearn(source, split, C: float) -> dict:
    """scikit-learn's LogisticRegression on standardised frozen features: accuracy and predictions."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from ..transfer import extract_features

    Ftr = extract_features(source, split.X_train).numpy()
    Fte = extract_features(source, split.X_test).numpy()
    scaler = StandardScaler().fit(Ftr)
    clf = LogisticRegression(C=C, max_iter=2000).fit(scaler.transform(Ftr), split.y_train.numpy())
    pred = clf.predict(scaler.transform(Fte))
    return {"acc": float((pred == split.y_test.numpy()).mean()), "pred": pred}


def run(quick: bool = False) -> dict:
    """The full grid (``quick``: 2 label counts, 1 seed, 10 steps: for the tests)."""
    from ..data import digits
    from ..train import predict
    from .source_model import source_for
    from .transfer_distance import _stat

    source = source_for(quick)
    source_state = {k: v.clone() for k, v in source.state_dict().items()}
    target = digits(size=28)
    per_class = [1, 5] if quick else PER_CLASS
    seeds = [0] if quick else SEEDS
    steps = 10 if quick else CONFIG["steps"]
    t_start = time.perf_counter()

    curves: dict[str, dict] = {m: {} for m in METHODS + ["sklearn", "probe_adam"]}
    agreement: dict[str, list[float]] = {}
    stage_change: dict[str, dict[str, float]] = {}
    filters: dict[str, list] = {"source": source_state["conv1.weight"].squeeze(1).tolist()}
    seconds: dict[str, float] = {m: 0.0 for m in ADAM_METHODS + ["probe"]}
    for k in per_class:
        key = str(k)
        for m in curves:
            curves[m][key] = []
        agreement[key] = []
        for seed in seeds:
            split = target if k == "all" else target.subset(int(k), seed)
            sk = _probe_sklearn(source, split, CONFIG["C"])
            curves["sklearn"][key].append(sk["acc"])
            t0 = time.perf_counter()
            probe, acc = probe_logistic(source_state, split, CONFIG["C"])
            seconds["probe"] += time.perf_counter() - t0
            curves["probe"][key].append(acc)
            pred = predict(probe, split.X_test).argmax(1).numpy()
            agreement[key].append(float((pred == sk["pred"]).mean()))
            for m in ADAM_METHODS:
                t0 = time.perf_counter()
                model, acc = train_target(m, split, seed, source_state, steps)
                seconds[m] += time.perf_counter() - t0
                curves[m][key].append(acc)
                if m == "full" and seed == seeds[0]:
                    stage_change[key] = _stage_change(model, source_state)
                if k == per_class[-1] and seed == seeds[0] and m in ("scratch", "full"):
                    filters[f"{m}_{key}"] = model.conv1.weight.detach().cpu().squeeze(1).tolist()

    def summary(d: dict[str, list[float]]) -> dict[str, dict[str, float]]:
        return {k: _stat(v) for k, v in d.items()}

    return {
        "config": {**CONFIG, "per_class": [str(k) for k in per_class], "seeds": seeds, "steps": steps,
                   "train_size_all": len(target.y_train), "test_size": len(target.y_test),
                   "source": getattr(source, "source_meta", {}).get("config", {}),
                   "source_test_acc": getattr(source, "source_meta", {}).get("test_acc")},
        "acc": curves,
        "summary": {m: summary(v) for m, v in curves.items()},
        "probe_sklearn_agreement": agreement,
        "stage_change": stage_change,
        "conv1_filters": filters,
        "seconds": {**seconds, "total": time.perf_counter() - t_start},
        "torch": str(torch.__version__),
    }
