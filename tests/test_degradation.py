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


def test_extend_resumes_an_interrupted_run(tmp_path, monkeypatch):
    """extend() saves every network as soon as it is trained; after an interruption the next call
    trains only the networks still missing, and the partial file goes once the results are saved."""
    import json

    monkeypatch.setenv("CONVNETS_RESULTS", str(tmp_path))
    tiny = dict(degradation.QUICK_CONFIG, depths=[8], seeds=[0])
    monkeypatch.setattr(degradation, "CONFIG", tiny)
    degradation.extend()  # seed 0: the saved results
    saved = json.loads((tmp_path / "degradation.json").read_text())
    assert len(saved["runs"]) == 2

    real, calls = degradation.train_one, []

    def interrupted(*args, **kwargs):
        calls.append(args[:3])
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed while training the second network of seed 1
        return real(*args, **kwargs)

    monkeypatch.setattr(degradation, "CONFIG", dict(tiny, seeds=[0, 1]))
    monkeypatch.setattr(degradation, "train_one", interrupted)
    with pytest.raises(KeyboardInterrupt):
        degradation.extend()
    partial = json.loads((tmp_path / "degradation.partial.json").read_text())
    assert [(r["kind"], r["seed"]) for r in partial["runs"]] == [("plain", 1)]

    calls.clear()
    monkeypatch.setattr(degradation, "train_one", lambda *a, **k: (calls.append(a[:3]), real(*a, **k))[1])
    out = degradation.extend()
    assert calls == [("residual", 8, 1)]  # only the network that was missing
    assert not (tmp_path / "degradation.partial.json").exists()
    assert sorted((r["kind"], r["seed"]) for r in out["runs"]) == [
        ("plain", 0), ("plain", 1), ("residual", 0), ("residual", 1)]
    assert out["runs"][0] == saved["runs"][0]  # the saved run of seed 0 is kept as it was
    assert "resumed" in out["provenance"] and "seeds [0] from an earlier run" in out["provenance"]
    for s in out["summary"]:
        assert len(s["train_error_per_seed"]) == 2


def test_gradient_at_init_equals_autograd_and_the_saved_numbers():
    """gradient_at_init measures what torch.autograd.grad gives for the first convolution, and the
    cached results are what the code measures now (plain-20, seed 0)."""
    import json
    from pathlib import Path

    import torch

    from convnets.data import mnist5k
    from convnets.experiments import gradient_at_init
    from convnets.models import plain_cifar

    r = gradient_at_init.run(quick=True)
    assert sorted(r["norms"]) == ["plain-14", "plain-8", "residual-14", "residual-8"]
    assert all(len(v) == 2 and min(v) > 0 for v in r["norms"].values())
    split = mnist5k()

    def by_hand(depth, seed, batch):
        torch.manual_seed(seed)
        net = plain_cifar(depth=depth, in_channels=1, num_classes=10, width=16)
        loss = torch.nn.functional.cross_entropy(net(split.X_train[:batch]), split.y_train[:batch])
        return torch.autograd.grad(loss, net.conv1.weight)[0].norm().item()

    assert r["norms"]["plain-8"][1] == pytest.approx(by_hand(8, 1, 8), rel=1e-5)
    saved = json.loads((Path(__file__).resolve().parents[1] / "results" / "gradient_at_init.json").read_text())
    assert saved["norms"]["plain-20"][0] == pytest.approx(by_hand(20, 0, 32), rel=1e-3)
