"""Claims of the chapter "Transfer learning" (``book/07-transfer-learning.md``).

They rest on the cached runs: ``results/source_model.json`` (the MNIST 5k source model),
``results/transfer_curves.json`` (MNIST -> UCI digits: scratch, probe, last block, full
fine-tuning at 1..all labels per class, three seeds), ``results/transfer_stem.json`` (one learning
rate for every stage, a frozen stem, scratch), ``results/transfer_distance.json`` (a source trained on digits 0-4, moved to
digits 0-4 and 5-9) and ``results/transfer_sweep.json`` (how many stages to retrain, digits and
inverted digits, every run trained until its accuracy stops moving). One claim is a cheap live
computation (the linear probe on pretrained against random features).

Spreads are sample standard deviations over the seeds (``ddof=1``, :class:`convnets.claims.Stat`).

Runs of two methods with the same seed share the labelled images, so "in every seed" compares
paired runs.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import Outcome, Stat, claim, results, verdict_from

SIZES = ["1", "5", "10", "50", "all"]


def _z(v: float, digits: int = 1) -> float:
    """``v``, or 0.0 when it rounds to zero at ``digits`` decimals (so "+.1f" never prints "-0.0")."""
    return 0.0 if round(v, digits) == 0 else v


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
       "predictions in every run, and their test accuracies differ by at most one test image.",
       uses=("transfer_curves",))
def _probe_logreg():
    r = results("transfer_curves")
    agree = [a for v in r["probe_sklearn_agreement"].values() for a in v]
    n_test = r["config"]["test_size"]
    gaps = [abs(a - b) * n_test for k in r["acc"]["probe"] for a, b in zip(r["acc"]["probe"][k], r["acc"]["sklearn"][k])]
    return Outcome(min(agree) >= 0.99 and max(gaps) <= 1 + 1e-6,
                   f"agreement over {len(agree)} runs: min {min(agree):.4f}; largest accuracy gap "
                   f"{max(gaps):.0f} test image(s)",
                   values={"min": 100 * min(agree), "n": len(agree), "max_images": round(max(gaps))})


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
        values[f"gain{k}"] = _z(100 * (f.mean - s.mean))
    return Outcome(ok, "; ".join(parts), values=values)


@claim("07", "last-block-as-full", "Fine-tuning only the last block is as good as fine-tuning "
       "everything: paired by seed (same labelled images) it is ahead in every seed at 1 and 10 labels "
       "per class, behind in every seed with all labels; at 1 label per class its lead (3-4 points in "
       "every seed) is about half the spread between seeds (the seed std of either method), and from "
       "5 labels per class on the two differ by at most 2 points in every seed.",
       uses=("transfer_curves",))
def _last_block():
    d = {k: _paired(_acc("last_block", k), _acc("full", k)) for k in SIZES}
    sd1 = min(Stat(_acc("last_block", "1")).std, Stat(_acc("full", "1")).std)
    ratio = float(np.mean(d["1"])) / sd1 if sd1 > 0 else float("inf")
    rest = max(abs(v) for k in SIZES if k != "1" for v in d[k])
    ok = (min(d["1"]) > 0 and min(d["10"]) > 0 and max(d["all"]) < 0
          and 0.03 <= min(d["1"]) and max(d["1"]) < 0.045 and 0.35 < ratio < 0.75 and rest < 0.02)
    ev = ("; ".join(f"{k}: last block minus full {Stat(g, '+.3f')}" for k, g in d.items())
          + f"; mean lead at 1 label per class / smaller seed std there = {ratio:.2f}; "
          f"largest |difference| from 5 labels per class on = {rest:.3f}")
    values = {f"d{k}_min": _z(100 * min(g)) for k, g in d.items()} | {f"d{k}_max": _z(100 * max(g)) for k, g in d.items()}
    values["worst_mid"] = max(abs(100 * v) for k in ("5", "50") for v in d[k])
    values["sd1"] = 100 * sd1
    values["rest_max"] = 100 * rest
    return Outcome(ok, ev, values=values)


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


def _sweep_last_doubling(task: str, stage: str) -> float:
    """Change of the mean test accuracy (over the seeds) between the last two checkpoints of a
    sweep arm (each checkpoint has twice the steps of the one before)."""
    runs = results("transfer_sweep")["curves"][task][stage]
    return Stat([c["test_acc"][-1] for c in runs]).mean - Stat([c["test_acc"][-2] for c in runs]).mean


@claim("07", "sweep-converged", "Every run of the stage sweep fits its labelled images (final training "
       "loss below 0.05, training accuracy 100%). The head alone has stopped learning: over its last "
       "doubling of steps (25,600 to 51,200) its mean test accuracy over the seeds changes by less than "
       "one point on both tasks, and so does every run that retrains convolutions on the digits (100 to "
       "200 steps); on the inverted digits those were all still gaining, those retraining layer3 and "
       "layer2 by at least one point, so their accuracies are lower bounds.", uses=("transfer_sweep",))
def _sweep_converged():
    r = results("transfer_sweep")
    cv = r["curves"]
    changes = {(t, s): _sweep_last_doubling(t, s) for t in cv for s in cv[t]}
    loss = max(c["train_loss"][-1] for d in cv.values() for runs in d.values() for c in runs)
    train_acc = min(c["train_acc"][-1] for d in cv.values() for runs in d.values() for c in runs)
    flat = [changes[t, "1"] for t in cv] + [changes["digits", s] for s in cv["digits"] if s != "1"]
    rising = [changes["inverted", s] for s in cv["inverted"] if s != "1"]
    ok = (loss < 0.05 and train_acc == 1.0 and all(abs(v) < 0.01 for v in flat)
          and all(v >= 0 for v in rising) and min(changes["inverted", "2"], changes["inverted", "3"]) >= 0.0095)
    ev = ("change of the mean test accuracy over the last doubling (points): "
          + ", ".join(f"{t} {s}: {100 * v:+.1f}" for (t, s), v in changes.items())
          + f"; largest final training loss {loss:.4f}, lowest final training accuracy {train_acc:.3f}")
    return Outcome(ok, ev, values={"head_near": _z(100 * changes["digits", "1"]),
                                   "head_far": _z(100 * changes["inverted", "1"]),
                                   "max_flat": max(abs(100 * v) for v in flat), "max_rising": 100 * max(rising),
                                   "far2": 100 * changes["inverted", "2"], "far3": 100 * changes["inverted", "3"],
                                   "maxloss": loss})


@claim("07", "sweep-head-200", "Stopped after 200 steps, the head alone is far from converged: "
       "training it on to the end raises its test accuracy by more than 5 points in every seed on both "
       "tasks, and by more on the inverted digits (mean).", uses=("transfer_sweep",))
def _sweep_head_200():
    r = results("transfer_sweep")["curves"]
    rise = {t: [c["test_acc"][-1] - c["test_acc"][0] for c in r[t]["1"]] for t in r}
    first = {t: Stat([c["test_acc"][0] for c in r[t]["1"]]) for t in r}
    ok = all(min(v) > 0.05 for v in rise.values()) and Stat(rise["inverted"]).mean > Stat(rise["digits"]).mean
    ev = "; ".join(f"{t}: {first[t]} at 200 steps, rise to the end {Stat(v, '+.3f')}" for t, v in rise.items())
    return Outcome(ok, ev, values={"near200": 100 * first["digits"].mean, "far200": 100 * first["inverted"].mean,
                                   "rise_near": 100 * Stat(rise["digits"]).mean,
                                   "rise_far": 100 * Stat(rise["inverted"]).mean})


@claim("07", "sweep-head-far", "Trained to convergence, the head alone does worse on the inverted "
       "digits than on the digits in every seed (paired), by Adam and as a logistic regression, but by "
       "less than 5 points on average, and the two ranges over the seeds overlap for the Adam head; "
       "retraining layer3 as well brings both tasks above 90% in every seed.", uses=("transfer_sweep",))
def _sweep_head():
    r = results("transfer_sweep")
    sw, pr = r["acc"], r["probe"]
    near, far = sw["digits"]["1"], sw["inverted"]["1"]
    two_near, two_far = Stat(sw["digits"]["2"]), Stat(sw["inverted"]["2"])
    gap = Stat(_paired(near, far), "+.3f")
    pgap = Stat(_paired(pr["digits"], pr["inverted"]), "+.3f")
    # the digits head's mean curve peaks before the end (overfitting): the gap at that checkpoint
    cn = [Stat([c["test_acc"][i] for c in r["curves"]["digits"]["1"]]).mean
          for i in range(len(r["curves"]["digits"]["1"][0]["test_acc"]))]
    cf = [Stat([c["test_acc"][i] for c in r["curves"]["inverted"]["1"]]).mean for i in range(len(cn))]
    ipk = int(np.argmax(cn))
    ok = (max(_paired(far, near)) < 0 and max(_paired(pr["inverted"], pr["digits"])) < 0
          and gap.mean < 0.05 and pgap.mean < 0.05 and Stat(near).overlaps(Stat(far))
          and min(two_near.min, two_far.min) > 0.90
          and cn[ipk] - cf[ipk] > gap.mean)
    return Outcome(ok, f"head only (Adam, to the end): digits {Stat(near)}, inverted {Stat(far)}, paired gap {gap}; "
                   f"logistic regression: digits {Stat(pr['digits'])}, inverted {Stat(pr['inverted'])}; "
                   f"+ layer3: digits {two_near}, inverted {two_far}",
                   values={"near": 100 * Stat(near).mean, "far": 100 * Stat(far).mean, "gap": 100 * gap.mean,
                           "gap_min": 100 * gap.min, "gap_max": 100 * gap.max,
                           "pnear": 100 * Stat(pr["digits"]).mean, "pfar": 100 * Stat(pr["inverted"]).mean,
                           "pgap": 100 * pgap.mean,
                           "near2": 100 * two_near.mean, "far2": 100 * two_far.mean,
                           "peak_near": 100 * cn[ipk], "peak_far": 100 * cf[ipk], "peak_gap": 100 * (cn[ipk] - cf[ipk]),
                           "peak_steps": r["config"]["head_checkpoints"][ipk], "near_drop": 100 * (cn[ipk] - cn[-1]),
                           "best_near": 100 * max(Stat(v).mean for v in sw["digits"].values()),
                           "best_far": 100 * max(Stat(v).mean for v in sw["inverted"].values())})


@claim("07", "filters-near-init", "The first-layer filters shown (source model, and the scratch network "
       "of seed 0) are mostly one random initialisation: the scratch run of seed 0 starts from the very "
       "weights the source started from (same seed), and every filter of both keeps a cosine similarity of "
       "at least 0.85 with that initialisation.", uses=("transfer_curves",))
def _filters_init():
    import torch

    from ..experiments.source_model import SOURCE_CONFIG, build_source_model
    from ..train import seed_everything

    filt = results("transfer_curves")["conv1_filters"]
    seed_everything(SOURCE_CONFIG["seed"])
    w0 = build_source_model().conv1.weight.detach().reshape(16, -1).double()

    def cos(w) -> torch.Tensor:
        w = torch.tensor(w, dtype=torch.float64).reshape(16, -1)
        return (w * w0).sum(1) / (w.norm(dim=1) * w0.norm(dim=1))

    def rel(w) -> float:
        w = torch.tensor(w, dtype=torch.float64).reshape(16, -1)
        return float((w - w0).norm() / w0.norm())

    src, scr = cos(filt["source"]), cos(filt["scratch_all"])
    ok = SOURCE_CONFIG["seed"] == results("transfer_curves")["config"]["seeds"][0] and min(src.min(), scr.min()) >= 0.85
    return Outcome(ok, f"cosine with the seed-{SOURCE_CONFIG['seed']} initialisation per filter: source "
                   f"{src.min():.2f}-{src.max():.2f}, scratch {scr.min():.2f}-{scr.max():.2f}; relative change "
                   f"source {rel(filt['source']):.2f}, scratch {rel(filt['scratch_all']):.2f}",
                   values={"src_min": float(src.min()), "scr_min": float(scr.min()),
                           "src_rel": 100 * rel(filt["source"]), "scr_rel": 100 * rel(filt["scratch_all"])})


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


# --- the stem under one learning rate (transfer_stem) -------------------------------------------

def _stem():
    r = results("transfer_stem")
    ch = r["change"]
    stages = r["config"]["stages"]

    def stat(task: str, arm: str, stage: str) -> Stat:
        return Stat([c[stage] for c in ch[task][arm]])

    return r, stages, stat


@claim("07", "stem-one-lr", "With one learning rate for every stage, fine-tuning moves the stem's "
       "kernels by more than a tenth of their norm in every seed, and by more (relative to the "
       "kernels' norm) than training from scratch moves the stem away from its initialisation; "
       "layer2 and layer3 move less than from scratch in every seed (ranges separate), while layer1's "
       "ranges overlap.", uses=("transfer_stem",))
def _stem_one_lr():
    r, stages, stat = _stem()
    stem = stages[0]
    ft, scr = stat("digits", "one_lr", stem), stat("digits", "scratch", stem)
    deeper = (all(stat("digits", "scratch", s).above(stat("digits", "one_lr", s)) for s in stages[2:])
              and stat("digits", "one_lr", stages[1]).overlaps(stat("digits", "scratch", stages[1])))
    ok = ft.min > 0.10 and ft.mean > scr.mean and deeper
    ev = "; ".join(f"{s}: fine-tuned {stat('digits', 'one_lr', s)}, scratch {stat('digits', 'scratch', s)}"
                   for s in stages)
    values = {}
    for s in stages:
        key = "stem" if s == stem else s
        values[f"{key}_ft"] = 100 * stat("digits", "one_lr", s).mean
        values[f"{key}_ft_std"] = 100 * stat("digits", "one_lr", s).std
        values[f"{key}_scr"] = 100 * stat("digits", "scratch", s).mean
        values[f"{key}_scr_std"] = 100 * stat("digits", "scratch", s).std
        values[f"{key}_ratio"] = stat("digits", "one_lr", s).mean / stat("digits", "scratch", s).mean
    return Outcome(ok, ev, values=values)


@claim("07", "frozen-stem", "Keeping the source's stem frozen (one learning rate for the rest) costs "
       "nothing measurable: its accuracy and that of fine-tuning every stage overlap over the seeds "
       "and their means are within one point; both beat training from scratch in every seed.",
       uses=("transfer_stem",))
def _frozen_stem():
    acc = results("transfer_stem")["acc"]["digits"]
    fz, one, scr = Stat(acc["frozen_stem"]), Stat(acc["one_lr"]), Stat(acc["scratch"])
    ok = (fz.overlaps(one) and abs(fz.mean - one.mean) < 0.01 and min(_paired(acc["frozen_stem"], acc["scratch"])) > 0
          and min(_paired(acc["one_lr"], acc["scratch"])) > 0)
    return Outcome(ok, f"frozen stem {fz}, every stage {one}, scratch {scr}",
                   values={"frozen": 100 * fz.mean, "frozen_std": 100 * fz.std, "one": 100 * one.mean,
                           "one_std": 100 * one.std, "scratch": 100 * scr.mean, "scratch_std": 100 * scr.std,
                           "diff": 100 * (fz.mean - one.mean)})


@claim("07", "stem-far-same", "On the inverted digits, fine-tuning with one learning rate moves the "
       "stem about as much as on the digits (ranges overlap, means within 3 points): the amount a "
       "stage moves under Adam says little about how much it needs to change.", uses=("transfer_stem",))
def _stem_far():
    r, stages, stat = _stem()
    stem = stages[0]
    near, far = stat("digits", "one_lr", stem), stat("inverted", "one_lr", stem)
    ok = near.overlaps(far) and abs(near.mean - far.mean) < 0.03
    return Outcome(ok, f"stem change: inverted {far}, digits {near}",
                   values={"far": 100 * far.mean, "far_std": 100 * far.std, "near": 100 * near.mean})


# --- a farther target (transfer_distance) --------------------------------------------------------

def _dist(target: str, method: str, k: str) -> list[float]:
    return results("transfer_distance")["acc"][target][method][k]


def _dist_gain(target: str, method: str, k: str) -> list[float]:
    return results("transfer_distance")["gain"][target][method][k]


def _dist_sizes() -> list[str]:
    return results("transfer_distance")["config"]["per_class"]


@claim("07", "source04-acc", "The second source model (the same recipe on MNIST 5k's digits 0-4 only) "
       "classifies at least 97% of the held-out digits 0-4.", uses=("transfer_distance",))
def _source04():
    acc = results("transfer_distance")["source"]["test_acc"]
    return Outcome(acc >= 0.97, f"test accuracy {acc:.4f} on {results('transfer_distance')['source']['test_size']} "
                   "images", values={"acc": 100 * acc})


@claim("07", "distance-gain", "Fine-tuning the 0-4 source gains over training from scratch on average on "
       "both targets; its mean gain is lower on the new classes 5-9 than on the source's classes 0-4 at "
       "every label budget, but by less than the spread between seeds (the ranges overlap at every "
       "budget).", uses=("transfer_distance",))
def _distance_gain():
    ks = _dist_sizes()
    near = {k: Stat(_dist_gain("near", "full", k), "+.3f") for k in ks}
    far = {k: Stat(_dist_gain("far", "full", k), "+.3f") for k in ks}
    ok = all(far[k].mean < near[k].mean and far[k].overlaps(near[k]) and far[k].mean > 0 for k in ks)
    ev = "; ".join(f"{k}/class: gain on 0-4 {near[k]}, on 5-9 {far[k]}" for k in ks)
    values = {f"near{k}": _z(100 * near[k].mean) for k in ks} | {f"far{k}": _z(100 * far[k].mean) for k in ks}
    values |= {f"near{k}_std": 100 * near[k].std for k in ks} | {f"far{k}_std": 100 * far[k].std for k in ks}
    diffs = [100 * (near[k].mean - far[k].mean) for k in ks]
    values |= {"mindiff": min(diffs), "maxdiff": max(diffs)}
    return Outcome(ok, ev, values=values)


@claim("07", "distance-probe", "A linear probe on the frozen 0-4 features is less accurate on 5-9 than "
       "on 0-4 at every label budget (means), but so is training from scratch; relative to scratch the "
       "probe does no worse on the far pair beyond the noise (the ranges of its gain overlap), and it "
       "stays below scratch on average from 2 labels per class on, for both targets; at 1 and 2 labels per "
       "class its mean gain is even higher on the far pair.",
       uses=("transfer_distance",))
def _distance_probe():
    ks = _dist_sizes()
    m = lambda t, meth, k: Stat(_dist(t, meth, k))  # noqa: E731
    gn = {k: Stat(_dist_gain("near", "probe", k), "+.3f") for k in ks}
    gf = {k: Stat(_dist_gain("far", "probe", k), "+.3f") for k in ks}
    ok = (all(m("far", "probe", k).mean < m("near", "probe", k).mean for k in ks)
          and all(m("far", "scratch", k).mean < m("near", "scratch", k).mean for k in ks)
          and all(gn[k].overlaps(gf[k]) for k in ks)
          and all(gn[k].mean < 0 and gf[k].mean < 0 for k in ks[1:])
          and all(gf[k].mean > gn[k].mean for k in ("1", "2")))
    ev = "; ".join(f"{k}/class: probe on 0-4 {m('near', 'probe', k)} (minus scratch {gn[k]}), on 5-9 "
                   f"{m('far', 'probe', k)} (minus scratch {gf[k]})" for k in ks)
    values = {f"near{k}": 100 * m("near", "probe", k).mean for k in ks} | {f"far{k}": 100 * m("far", "probe", k).mean for k in ks}
    values |= {f"snear{k}": 100 * m("near", "scratch", k).mean for k in ks} | {f"sfar{k}": 100 * m("far", "scratch", k).mean for k in ks}
    values |= {f"gnear{k}": 100 * gn[k].mean for k in ks} | {f"gfar{k}": 100 * gf[k].mean for k in ks}
    return Outcome(ok, ev, values=values)


@claim("07", "distance-far-tie", "In seed 0 of the far pair (0-4 -> 5-9), full fine-tuning and training "
       "from scratch get exactly the same number of test images right at every label budget; in the other "
       "seeds and on the near pair they differ.", uses=("transfer_distance",))
def _distance_tie():
    r = results("transfer_distance")
    ks, n = _dist_sizes(), r["config"]["test_size"]
    right = {(t, m, k): [round(a * n[t]) for a in _dist(t, m, k)] for t in n for m in ("full", "scratch") for k in ks}
    tie0 = all(right["far", "full", k][0] == right["far", "scratch", k][0] for k in ks)
    others = all(right[t, "full", k][i] != right[t, "scratch", k][i] for t in n for k in ks
                 for i in range(len(_dist(t, "full", k))) if (t, i) != ("far", 0))
    ev = "; ".join(f"{t} {k}/class: full {right[t, 'full', k]} vs scratch {right[t, 'scratch', k]} of {n[t]}"
                   for t in n for k in ks)
    return Outcome(tie0 and others, ev, values={f"far{k}": right["far", "full", k][0] for k in ks} | {"n_far": n["far"]})


# --- more paper and slide comparisons ------------------------------------------------------------

@claim("07", "paper-distance", "Transferability drops with the distance between the source and the "
       "target task.", uses=("transfer_distance",),
       paper="Yosinski et al. 2014, Section 4.2 and Figure 3 (ImageNet split into man-made and natural "
       "classes)", expect="not reproduced here")
def _paper_distance():
    ks = _dist_sizes()
    ft = [Stat(_dist_gain("far", "full", k)).mean < Stat(_dist_gain("near", "full", k)).mean for k in ks]
    pr = [Stat(_dist_gain("far", "probe", k)).mean < Stat(_dist_gain("near", "probe", k)).mean for k in ks]
    sep = [Stat(_dist_gain("near", "full", k)).above(Stat(_dist_gain("far", "full", k))) for k in ks]
    # partly: lower mean gains everywhere AND at least one budget where the seed ranges separate
    verdict = verdict_from(all(ft) and all(pr) and all(sep), all(ft) and any(sep))
    ev = ("gain over scratch, 0-4 source -> 0-4 vs 5-9 (mean, points): "
          + ", ".join(f"{k}/class fine-tune {100 * Stat(_dist_gain('near', 'full', k)).mean:+.1f} vs "
                      f"{100 * Stat(_dist_gain('far', 'full', k)).mean:+.1f}, probe "
                      f"{100 * Stat(_dist_gain('near', 'probe', k)).mean:+.1f} vs "
                      f"{100 * Stat(_dist_gain('far', 'probe', k)).mean:+.1f}" for k in ks)
          + f"; seed ranges separate at {sum(sep)} of {len(ks)} budgets")
    return Outcome(True, ev, verdict=verdict)


@claim("07", "paper-random-init", "Transferred weights beat random ones as a starting point, and the "
       "boost lingers after fine-tuning on the whole target set.", uses=("transfer_curves",),
       paper="Yosinski et al. 2014, Section 4.1 and Figure 2 (random halves of ImageNet)", expect="partly")
def _paper_random():
    few = all(min(_paired(_acc("full", k), _acc("scratch", k))) > 0 for k in ("1", "5", "10"))
    lingers = min(_paired(_acc("full", "all"), _acc("scratch", "all"))) > 0
    g = {k: Stat(_paired(_acc("full", k), _acc("scratch", k)), "+.3f") for k in SIZES}
    ev = "fine-tuned minus scratch: " + ", ".join(f"{k}/class {_z(100 * v.mean):+.1f} points "
                                                   f"(range {_z(100 * v.min):+.1f} to {_z(100 * v.max):+.1f})"
                                                   for k, v in g.items())
    return Outcome(True, ev, verdict=verdict_from(few and lingers, few))


@claim("07", "paper-filters", "First-layer filters are alike for all tasks.", uses=("transfer_stem",),
       paper="lecture slides «Дообучение» (after Yosinski et al. 2014)", expect="partly")
def _paper_filters():
    r = results("transfer_stem")
    acc = r["acc"]["digits"]
    stem = r["config"]["stages"][0]
    fz, one = Stat(acc["frozen_stem"]), Stat(acc["one_lr"])
    frozen_ok = fz.overlaps(one) and abs(fz.mean - one.mean) < 0.01
    near = [c[stem] for c in r["change"]["digits"]["one_lr"]]
    far = [c[stem] for c in r["change"]["inverted"]["one_lr"]]
    # "for all tasks": full only if a frozen stem was tested (and cost nothing) on two targets or more
    tested = [t for t, arms in r["acc"].items() if "frozen_stem" in arms]
    all_ok = len(tested) >= 2 and all(
        Stat(r["acc"][t]["frozen_stem"]).overlaps(Stat(r["acc"][t]["one_lr"])) for t in tested)
    verdict = verdict_from(frozen_ok and all_ok, frozen_ok)
    return Outcome(True, f"digits: frozen source stem {fz} vs every stage trained {one} (one learning rate); "
                   f"frozen stem tested on {len(tested)} target(s); stem change with one learning rate: inverted "
                   f"digits {Stat(far)} vs digits {Stat(near)}", verdict=verdict)


@claim("07", "paper-more-layers", "The further the new task from the source, the more layers must be "
       "retrained.", uses=("transfer_sweep",),
       paper="lecture slides «Дообучение» (after Yosinski et al. 2014)", expect="partly")
def _paper_layers():
    sw = results("transfer_sweep")["acc"]
    means = {t: {s: Stat(v).mean for s, v in sw[t].items()} for t in sw}

    def needed(t: str) -> int:
        best = max(means[t].values())
        return min(int(s) for s, m in means[t].items() if m >= best - 0.01)

    head_loss_far = max(_paired(sw["inverted"]["1"], sw["digits"]["1"])) < 0
    more = needed("inverted") > needed("digits")
    return Outcome(True, f"stages to retrain to come within 1 point of the best: digits {needed('digits')}, "
                   f"inverted digits {needed('inverted')}; head only (converged): digits {Stat(sw['digits']['1'])}, "
                   f"inverted {Stat(sw['inverted']['1'])}", verdict=verdict_from(more, head_loss_far),
                   values={"near": needed("digits"), "far": needed("inverted")})
