"""Claims of the chapter "Transfer learning" (``book/07-transfer-learning.md``).

They rest on the cached runs: ``results/source_model.json`` (the MNIST 5k source model),
``results/transfer_curves.json`` (MNIST -> UCI digits: scratch, probe, last block, full
fine-tuning at 1..all labels per class, three seeds; the stage sweep on the digits and the
inverted digits), ``results/transfer_stem.json`` (one learning rate for every stage, a frozen
stem, scratch) and ``results/transfer_distance.json`` (a source trained on digits 0-4, moved to
digits 0-4, 5-9 and inverted 5-9). One claim is a cheap live computation (the linear probe on
pretrained against random features).

Runs of two methods with the same seed share the labelled images, so "in every seed" compares
paired runs.
"""
from __future__ import annotations

from functools import lru_cache

from . import Outcome, Stat, claim, results, verdict_from

SIZES = ["1", "5", "10", "50", "all"]


def _acc(method: str, k: str) -> list[float]:
    return results("transfer_curves")["acc"][method][k]


def _paired(a: list[float], b: list[float]) -> list[float]:
    return [x - y for x, y in zip(a, b)]


# --- the source model --------------------------------------------------------------------------

@claim("07", "source-acc", "The source model (ResNet-8, 10 epochs on the 4,000 MNIST 5k training "
       "digits) classifies at least 97% of the 1,000 held-out digits.", uses=("source_model",))
def _source_acc():
    acc = results("source_model")["test_acc"]
    return Outcome(acc >= 0.97, f"test accuracy {acc:.4f}", values={"acc": 100 * acc})


# --- the linear probe --------------------------------------------------------------------------

@claim("07", "probe-is-logreg", "The linear probe fitted in torch (L-BFGS) and scikit-learn's "
       "LogisticRegression on the same standardised features agree on at least 99% of the test "
       "predictions in every run.", uses=("transfer_curves",))
def _probe_logreg():
    agree = [a for v in results("transfer_curves")["probe_sklearn_agreement"].values() for a in v]
    return Outcome(min(agree) >= 0.99, f"agreement over {len(agree)} runs: min {min(agree):.4f}",
                   values={"min": 100 * min(agree), "n": len(agree)})


@lru_cache(maxsize=1)
def probe_pretrained_vs_random() -> dict[str, dict[str, list[float]]]:
    """Test accuracy of a logistic regression (C=1, standardised features) on the UCI digits'
    last-layer features of the source model and of the same architecture with random weights
    (``torch.manual_seed(0)``), for 1, 5, 10 labels per class (seeds 0, 1, 2) and all labels."""
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from ..data import digits
    from ..experiments.source_model import build_source_model, load_source_model
    from ..transfer import extract_features

    target = digits(size=28)
    torch.manual_seed(0)
    nets = {"pretrained": load_source_model(train_if_missing=False), "random": build_source_model().eval()}
    out: dict[str, dict[str, list[float]]] = {}
    for name, net in nets.items():
        F_all = extract_features(net, target.X_train).numpy()
        F_test = extract_features(net, target.X_test).numpy()
        out[name] = {}
        for k in ("1", "5", "10", "all"):
            out[name][k] = []
            for seed in ([0] if k == "all" else [0, 1, 2]):
                split = target if k == "all" else target.subset(int(k), seed)
                Ftr = F_all if k == "all" else extract_features(net, split.X_train).numpy()
                sc = StandardScaler().fit(Ftr)
                clf = LogisticRegression(C=1.0, max_iter=2000).fit(sc.transform(Ftr), split.y_train.numpy())
                out[name][k].append(float(clf.score(sc.transform(F_test), target.y_test.numpy())))
    return out


@claim("07", "probe-random", "As a linear probe, the pretrained network's last-layer features beat "
       "random features only with one label per class (in every seed); from 5 labels per class on, "
       "the random network's features do as well or better (mean at least as high).",
       uses=("source_model",))
def _probe_random():
    r = probe_pretrained_vs_random()
    pre, rnd = r["pretrained"], r["random"]
    one = all(d > 0 for d in _paired(pre["1"], rnd["1"]))
    later = all(Stat(rnd[k]).mean >= Stat(pre[k]).mean for k in ("5", "10", "all"))
    ev = "; ".join(f"{k}/class: pretrained {Stat(pre[k])} vs random {Stat(rnd[k])}" for k in pre)
    values = {f"{n}_{k}": 100 * Stat(v[k]).mean for n, v in (("pre", pre), ("rnd", rnd)) for k in pre}
    values.update({f"{n}_{k}_std": 100 * Stat(v[k]).std for n, v in (("pre", pre), ("rnd", rnd)) for k in pre})
    return Outcome(one and later, ev, values=values)


# --- the label-budget curves ---------------------------------------------------------------------

@claim("07", "finetune-beats-scratch-few", "With 1, 5 and 10 labels per class, full fine-tuning "
       "from the source beats training from scratch in every seed (paired: same labelled images).",
       uses=("transfer_curves",))
def _ft_few():
    gains = {k: _paired(_acc("full", k), _acc("scratch", k)) for k in ("1", "5", "10")}
    ok = all(min(g) > 0 for g in gains.values())
    ev = "; ".join(f"{k}/class: gain {Stat(g, '+.3f')}" for k, g in gains.items())
    return Outcome(ok, ev, values={f"gain{k}": 100 * Stat(g).mean for k, g in gains.items()}
                   | {f"gain{k}_min": 100 * min(g) for k, g in gains.items()}
                   | {f"gain{k}_max": 100 * max(g) for k, g in gains.items()})


@claim("07", "gap-closes", "With 50 labels per class and with all 1,438 labels, full fine-tuning "
       "and training from scratch are within the noise of each other (ranges overlap, means "
       "within one point).", uses=("transfer_curves",))
def _gap_closes():
    parts, ok, values = [], True, {}
    for k in ("50", "all"):
        f, s = Stat(_acc("full", k)), Stat(_acc("scratch", k))
        ok &= f.overlaps(s) and abs(f.mean - s.mean) < 0.01
        parts.append(f"{k}/class: full {f} vs scratch {s}")
        values[f"gain{k}"] = 100 * (f.mean - s.mean)
    return Outcome(ok, "; ".join(parts), values=values)


@claim("07", "last-block-as-full", "Fine-tuning only the last block does as well as fine-tuning "
       "everything at every label budget (ranges overlap).", uses=("transfer_curves",))
def _last_block():
    ok = all(Stat(_acc("last_block", k)).overlaps(Stat(_acc("full", k))) for k in SIZES)
    ev = "; ".join(f"{k}: last block {Stat(_acc('last_block', k))} vs full {Stat(_acc('full', k))}" for k in SIZES)
    return Outcome(ok, ev)


@claim("07", "probe-weakest", "The frozen linear probe is below full fine-tuning in every seed at "
       "every label budget, and below training from scratch in every seed from 5 labels per class on.",
       uses=("transfer_curves",))
def _probe_weakest():
    below_full = all(max(_paired(_acc("probe", k), _acc("full", k))) < 0 for k in SIZES)
    below_scratch = all(max(_paired(_acc("probe", k), _acc("scratch", k))) < 0 for k in SIZES[1:])
    ev = "; ".join(f"{k}: probe {Stat(_acc('probe', k))}, scratch {Stat(_acc('scratch', k))}, "
                   f"full {Stat(_acc('full', k))}" for k in SIZES)
    return Outcome(below_full and below_scratch, ev,
                   values={"probe1": 100 * Stat(_acc("probe", "1")).mean,
                           "full1": 100 * Stat(_acc("full", "1")).mean,
                           "scratch1": 100 * Stat(_acc("scratch", "1")).mean})


@claim("07", "adam-probe-lags", "With all the labels, the same frozen network with its head trained "
       "by Adam for 200 steps stays more than 5 points below the converged logistic-regression probe "
       "in every seed.", uses=("transfer_curves",))
def _adam_probe():
    a, p = _acc("probe_adam", "all"), _acc("probe", "all")
    return Outcome(max(_paired(a, p)) < -0.05, f"Adam head {Stat(a)} vs logistic regression {Stat(p)}",
                   values={"adam": 100 * Stat(a).mean, "lr": 100 * Stat(p).mean})


@claim("07", "sweep-head-far", "Retraining only the head (10 labels per class), the inverted digits "
       "lose more than 10 points against the digits in every seed; retraining layer3 as well brings "
       "both above 90%.", uses=("transfer_curves",))
def _sweep_head():
    sw = results("transfer_curves")["sweep"]["acc"]
    near, far = sw["digits"]["1"], sw["inverted"]["1"]
    two_near, two_far = Stat(sw["digits"]["2"]), Stat(sw["inverted"]["2"])
    ok = max(_paired(far, near)) < -0.10 and min(two_near.min, two_far.min) > 0.90
    return Outcome(ok, f"head only: digits {Stat(near)}, inverted {Stat(far)}; + layer3: digits {two_near}, "
                   f"inverted {two_far}",
                   values={"near": 100 * Stat(near).mean, "far": 100 * Stat(far).mean,
                           "near2": 100 * two_near.mean, "far2": 100 * two_far.mean})


# --- paper and slide comparisons ---------------------------------------------------------------

@claim("07", "paper-slide-advice", "Slides: with very little data train only a new last layer (a "
       "linear probe); with not so little, fine-tune it and a few layers before it.",
       uses=("transfer_curves",), paper="lecture slides «Дообучение» (advice, no figure)", expect="partly")
def _slide_advice():
    scarce = Stat(_paired(_acc("probe", "1"), _acc("full", "1")), "+.3f")
    more = {k: Stat(_paired(_acc("full", k), _acc("probe", k)), "+.3f") for k in ("5", "10", "50", "all")}
    probe_wins_scarce = scarce.min > 0
    ft_wins_more = all(s.min > 0 for s in more.values())
    verdict = verdict_from(probe_wins_scarce and ft_wins_more, probe_wins_scarce or ft_wins_more)
    ev = (f"1 label/class: probe minus full fine-tuning {scarce}; 5+ labels/class: full minus probe "
          + ", ".join(f"{k}: {s}" for k, s in more.items()))
    return Outcome(True, ev, verdict=verdict)
