"""The degradation experiment's bookkeeping: adding seeds to saved results trains only the missing
runs and keeps the saved ones; a different recipe is refused; the summary is recomputed."""
from __future__ import annotations

import pytest

from convnets.experiments import degradation


def test_previous_runs_are_kept_and_only_missing_seeds_trained():
    base = dict(degradation.QUICK_CONFIG, depths=[8], seeds=[0])
    first = degradation.run(config=base)
    assert len(first["runs"]) == 2 and "provenance" not in first
    more = dict(base, seeds=[0, 1])
    second = degradation.run(config=more, previous=first)
    assert len(second["runs"]) == 4
    kept = {(r["kind"], r["seed"]): r for r in second["runs"]}
    for r in first["runs"]:
        assert kept[(r["kind"], 0)] is r  # the saved run, not a retrained one
    assert "seeds [0] from an earlier run" in second["provenance"] and "seeds [1] trained now" in second["provenance"]
    for s in second["summary"]:
        assert len(s["train_error_per_seed"]) == 2 and len(s["final_train_loss_per_seed"]) == 2
        assert s["train_error"] == pytest.approx(sum(s["train_error_per_seed"]) / 2)
    with pytest.raises(ValueError, match="another recipe"):
        degradation.run(config=dict(more, lr=0.05), previous=first)


def test_summarise_by_hand():
    cfg = {"depths": [8], "epochs": 2}
    h = lambda acc, val: {"train_acc": [0.5, acc], "val_acc": [0.5, val], "train_loss": [1.0, 0.25], "seconds": [1.0, 1.0]}  # noqa: E731
    runs = [{"kind": k, "depth": 8, "seed": s, "history": h(0.9 + 0.05 * s, 0.8)} for k in ("plain", "residual") for s in (0, 1)]
    out = {x["kind"]: x for x in degradation.summarise(runs, cfg)}
    assert out["plain"]["train_error_per_seed"] == pytest.approx([10.0, 5.0])
    assert out["plain"]["train_error"] == pytest.approx(7.5) and out["plain"]["test_error"] == pytest.approx(20.0)
    assert out["residual"]["seconds_per_epoch"] == pytest.approx(1.0)
