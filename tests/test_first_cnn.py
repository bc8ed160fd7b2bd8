"""The chapter-1 experiment (``convnets.experiments.first_cnn``): every training-set size gets
the same number of gradient steps, and the cached predictions agree with the accuracy that
``fit`` reported."""
from __future__ import annotations

import math

import pytest
import torch

from convnets.data import loaders, mnist5k
from convnets.experiments import first_cnn


def test_every_size_gets_the_same_number_of_steps():
    split = mnist5k()
    steps = {}
    for k in first_cnn.PER_CLASS:
        sub = split if k == first_cnn.FULL_PER_CLASS else split.subset(per_class=k, seed=0)
        assert len(sub.y_train) == 10 * k, f"{k} per class gives {len(sub.y_train)} images"
        train_loader, _ = loaders(sub, batch_size=first_cnn.BATCH_SIZE, seed=0)
        steps[k] = first_cnn.epochs_for(k) * len(train_loader)
    full = steps[first_cnn.FULL_PER_CLASS]
    assert full == first_cnn.EPOCHS_FULL * math.ceil(4000 / first_cnn.BATCH_SIZE)
    for k, s in steps.items():
        assert abs(s - full) / full < 0.05, f"{10 * k} images: {s} steps against {full} at 4,000"


@pytest.mark.slow
def test_quick_run_predictions_match_reported_accuracy():
    r = first_cnn.run(quick=True)
    assert {x["model"] for x in r["runs"]} == {m[0] for m in first_cnn.MODELS}
    labels = torch.tensor(r["test_labels"])
    assert len(labels) == r["test_size"] == 200
    assert torch.equal(labels, mnist5k().y_test[:200])
    for x in r["runs"]:
        pred = torch.tensor(x["test_pred"])
        assert pred.shape == labels.shape, x["model"]
        # the accuracy fit() reported after the last epoch equals the one counted from predictions
        acc = (pred == labels).double().mean().item()
        assert abs(acc - x["test_acc"]) < 1e-9, (x["model"], acc, x["test_acc"])
        assert x["epochs"] == 1 and len(x["curves"]["val_acc"]) == 1
        assert acc > 0.1, f"{x['model']}: one epoch on 200 images should beat chance, got {acc}"
    assert r["params"] == {"CNN": 421_642, "LeNet-5": 61_706}
