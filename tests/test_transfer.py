"""Tests of convnets.transfer against torchvision's models, scikit-learn and hand computations."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from convnets import transfer as T
from convnets.models import simple_cnn


@pytest.fixture
def tv_resnet() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10)


def test_stages_torchvision_resnet(tv_resnet):
    assert [n for n, _ in T.stages(tv_resnet)] == ["conv1+bn1", "layer1", "layer2", "layer3", "layer4", "fc"]


def test_stages_simple_cnn():
    assert [n for n, _ in T.stages(simple_cnn())] == ["features", "hidden", "fc"]


@pytest.mark.parametrize("until,trainable", [
    (None, ["fc"]),
    ("layer3", ["layer4", "fc"]),
    ("bn1", ["layer1", "layer2", "layer3", "layer4", "fc"]),
    ("conv1+bn1", ["layer1", "layer2", "layer3", "layer4", "fc"]),
])
def test_freeze_requires_grad(tv_resnet, until, trainable):
    T.freeze(tv_resnet, until)
    assert T.trainable_stages(tv_resnet) == trainable
    for name, mods in T.stages(tv_resnet):
        flags = {p.requires_grad for m in mods for p in m.parameters()}
        assert flags == {name in trainable}, name


def test_freeze_unknown_stage(tv_resnet):
    with pytest.raises(ValueError, match="no stage named"):
        T.freeze(tv_resnet, "layer9")


def test_frozen_weights_and_bn_stats_do_not_change(tv_resnet):
    T.freeze(tv_resnet, "layer3")
    before = {k: v.clone() for k, v in tv_resnet.state_dict().items()}
    opt = torch.optim.SGD([p for p in tv_resnet.parameters() if p.requires_grad], lr=0.1)
    tv_resnet.train()
    X, y = torch.randn(4, 3, 32, 32) * 3 + 1, torch.tensor([0, 1, 2, 3])
    nn.functional.cross_entropy(tv_resnet(X), y).backward()
    opt.step()
    after = tv_resnet.state_dict()
    for k in before:
        frozen = not (k.startswith("layer4") or k.startswith("fc"))
        same = torch.equal(before[k], after[k])
        if frozen:
            assert same, f"{k} is frozen (weights and BN statistics) but changed"
    assert not torch.equal(before["fc.weight"], after["fc.weight"]), "the head should learn"
    assert not torch.equal(before["layer4.0.bn1.running_mean"], after["layer4.0.bn1.running_mean"]), \
        "trainable batch norms still update their statistics in train mode"
    # unfreeze restores gradients and training-mode batch norm
    T.unfreeze(tv_resnet)
    assert all(p.requires_grad for p in tv_resnet.parameters())
    assert tv_resnet.bn1.training
    tv_resnet(X)
    assert not torch.equal(before["bn1.running_mean"], tv_resnet.state_dict()["bn1.running_mean"])


def test_freeze_without_bn_eval_updates_stats(tv_resnet):
    T.freeze(tv_resnet, bn_eval=False)
    before = tv_resnet.bn1.running_mean.clone()
    tv_resnet.train()(torch.randn(2, 3, 32, 32) + 1)
    assert not torch.equal(before, tv_resnet.bn1.running_mean)


def test_frozen_model_matches_eval_mode_outputs(tv_resnet):
    """A fully frozen backbone in train mode computes what the eval-mode model computes."""
    X = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        ref = tv_resnet.eval()(X)
        T.freeze(tv_resnet)
        out = tv_resnet.train()(X)
    torch.testing.assert_close(out, ref)


def test_replace_head_torchvision(tv_resnet):
    T.freeze(tv_resnet)
    T.replace_head(tv_resnet, 3)
    assert isinstance(tv_resnet.fc, nn.Linear) and tv_resnet.fc.out_features == 3
    assert tv_resnet.fc.in_features == 512 and tv_resnet.fc.weight.requires_grad
    assert tv_resnet(torch.randn(2, 3, 32, 32)).shape == (2, 3)


def test_replace_head_vgg_classifier():
    m = torchvision.models.vgg11(num_classes=5)
    T.replace_head(m, 2)
    assert m.classifier[6].out_features == 2


def test_replace_head_convnet():
    m = simple_cnn(num_classes=10)
    T.replace_head(m, 4)
    assert m.fc.out_features == 4 and m.num_classes == 4
    with pytest.raises(ValueError, match="positive integer"):
        T.replace_head(m, 0)


def test_param_groups_ulmfit(tv_resnet):
    groups = T.param_groups(tv_resnet, lr=1e-2)
    names = [g["name"] for g in groups]
    assert names == ["conv1+bn1", "layer1", "layer2", "layer3", "layer4", "fc"]
    for k, g in enumerate(reversed(groups)):
        assert g["lr"] == pytest.approx(1e-2 / 2.6**k), g["name"]
    # every trainable parameter is in exactly one group
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(tv_resnet.parameters()))
    opt = torch.optim.Adam(groups)
    assert [pg["lr"] for pg in opt.param_groups] == [g["lr"] for g in groups]


def test_param_groups_skip_frozen(tv_resnet):
    T.freeze(tv_resnet, "layer2")
    groups = T.param_groups(tv_resnet, lr=1.0, decay=2.0, weight_decay=1e-4)
    assert [(g["name"], g["lr"]) for g in groups] == [("layer3", 0.25), ("layer4", 0.5), ("fc", 1.0)]
    assert all(g["weight_decay"] == 1e-4 for g in groups)
    with pytest.raises(ValueError, match="decay"):
        T.param_groups(tv_resnet, lr=1.0, decay=0.5)


def test_extract_features_matches_manual(tv_resnet):
    X = torch.randn(7, 3, 32, 32)
    tv_resnet.eval()
    with torch.no_grad():
        body = nn.Sequential(*list(tv_resnet.children())[:-1])
        ref = torch.flatten(body(X), 1)
        ref_l2 = nn.Sequential(*list(tv_resnet.children())[:6])(X).mean((2, 3))
    tv_resnet.train()
    F = T.extract_features(tv_resnet, X, batch_size=3)
    assert F.shape == (7, 512) and F.dtype == torch.float32
    torch.testing.assert_close(F, ref)
    torch.testing.assert_close(T.extract_features(tv_resnet, X, layer="layer2"), ref_l2)
    assert tv_resnet.training, "the mode is restored"


def test_extract_features_loader_convnet():
    from convnets.data import make_loader

    torch.manual_seed(0)
    m = simple_cnn(hidden=32)
    X, y = torch.rand(10, 1, 28, 28), torch.arange(10)
    F, labels = T.extract_features(m, make_loader(X, y, batch_size=4, shuffle=False))
    assert F.shape == (10, 32) and labels.dtype == torch.int64
    torch.testing.assert_close(labels, y)
    with torch.no_grad():
        torch.testing.assert_close(F, m.eval().forward_head(m.forward_features(X), pre_logits=True))


def test_logistic_regression_agrees_with_sklearn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)).astype(np.float32)
    y = (X[:, :3] @ rng.normal(size=(3, 4))).argmax(1)
    lin = T.fit_logistic_regression(torch.from_numpy(X), torch.from_numpy(y), C=0.5)
    sk = LogisticRegression(C=0.5, tol=1e-10, max_iter=10_000).fit(X, y)
    torch.testing.assert_close(lin.weight, torch.tensor(sk.coef_, dtype=torch.float32), atol=2e-3, rtol=1e-3)
    torch.testing.assert_close(lin.bias, torch.tensor(sk.intercept_, dtype=torch.float32), atol=2e-3, rtol=1e-3)


def test_load_pretrained_checkpoint_and_skip_head(tmp_path):
    from convnets.train import save_checkpoint

    torch.manual_seed(0)
    src = simple_cnn(num_classes=10)
    save_checkpoint(tmp_path / "src.pt", src)
    dst = T.load_pretrained(simple_cnn(num_classes=10), tmp_path / "src.pt")
    torch.testing.assert_close(dst.fc.weight, src.fc.weight)
    other = simple_cnn(num_classes=3)
    T.load_pretrained(other, tmp_path / "src.pt", skip_head=True)
    torch.testing.assert_close(other.features[0].weight, src.features[0].weight)
    assert other.fc.out_features == 3
    with pytest.raises(FileNotFoundError, match="no weights"):
        T.load_pretrained(other, tmp_path / "missing.pt")


def test_torchvision_pretrained_offline(tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    torch.manual_seed(1)
    ref = torchvision.models.resnet18()
    path = tmp_path / "weights.pth"
    torch.save(ref.state_dict(), path)
    # 1. an explicit file
    m = T.torchvision_pretrained("resnet18", weights_path=path)
    torch.testing.assert_close(m.conv1.weight, ref.conv1.weight)
    assert not m.training
    # 2. missing from the cache, no download allowed: a clear error
    with pytest.raises(T.PretrainedWeightsNotAvailableError, match="download=True"):
        T.torchvision_pretrained("resnet18")
    # 3. in torch's cache under torchvision's file name: loaded without any download
    cached = T.torchvision_weights_path("resnet18")
    assert cached.name == "resnet18-f37072fd.pth" and cached.parent == hub / "checkpoints"
    cached.parent.mkdir(parents=True)
    torch.save(ref.state_dict(), cached)
    m = T.torchvision_pretrained("resnet18")
    torch.testing.assert_close(m.fc.weight, ref.fc.weight)
    with pytest.raises(ValueError, match="no model named"):
        T.torchvision_pretrained("not_a_model")


# --- the source model and the chapter's experiment -------------------------------------------

def test_source_checkpoint_matches_its_recorded_accuracy():
    from convnets.data import mnist5k
    from convnets.experiments.source_model import SOURCE_CONFIG, load_source_model, source_checkpoint_path
    from convnets.train import predict

    if not source_checkpoint_path().is_file():
        pytest.skip("results/source-model.pt is absent: the slow test trains it")
    assert source_checkpoint_path().stat().st_size < 5e6, "the checkpoint must stay under 5 MB"
    net = load_source_model(train_if_missing=False)
    assert net.source_meta["config"] == SOURCE_CONFIG, "the checkpoint was trained with another config"
    split = mnist5k()
    acc = (predict(net, split.X_test).argmax(1) == split.y_test).double().mean().item()
    assert acc == pytest.approx(net.source_meta["test_acc"], abs=2e-3)
    assert acc > 0.95, f"the source model should classify MNIST 5k's test digits well; got {acc:.3f}"


def test_load_source_model_missing_raises(tmp_path):
    from convnets.experiments.source_model import load_source_model

    with pytest.raises(FileNotFoundError, match="python -m convnets.experiments source_model"):
        load_source_model(train_if_missing=False, path=tmp_path / "none.pt")


@pytest.mark.slow
def test_source_script_reproduces_checkpoint(tmp_path):
    """Retraining with the seeded script gives the stored accuracy (within 1 point: thread counts
    and torch versions change the last bits of a float sum)."""
    from convnets.experiments.source_model import load_source_model, source_checkpoint_path

    if not source_checkpoint_path().is_file():
        pytest.skip("no committed checkpoint to compare with")
    stored = load_source_model(train_if_missing=False).source_meta["test_acc"]
    fresh = load_source_model(train_if_missing=True, path=tmp_path / "source.pt")
    assert (tmp_path / "source.pt").is_file()
    assert fresh.source_meta["test_acc"] == pytest.approx(stored, abs=0.01)


@pytest.mark.slow
def test_transfer_curves_quick():
    from convnets.experiments import transfer_curves

    r = transfer_curves.run(quick=True)
    json_ok = __import__("json").dumps(r)  # JSON-able
    assert json_ok
    for m in transfer_curves.METHODS + ["sklearn", "probe_adam"]:
        assert set(r["acc"][m]) == {"1", "5"}, m
        assert all(0 <= a <= 1 for v in r["acc"][m].values() for a in v), m
    # the torch logistic-regression head and scikit-learn's agree on (nearly) every prediction
    assert min(min(v) for v in r["probe_sklearn_agreement"].values()) > 0.97
    assert set(r["stage_change"]["1"]) == {"conv1+bn1", "layer1", "layer2", "layer3"}


def test_committed_transfer_results_are_complete():
    from convnets.experiments import results_dir, transfer_curves

    path = results_dir() / "transfer_curves.json"
    if not path.is_file():
        pytest.skip("results/transfer_curves.json is absent")
    r = __import__("json").loads(path.read_text())
    assert r["config"]["per_class"] == [str(k) for k in transfer_curves.PER_CLASS]
    for m in transfer_curves.METHODS:
        for k in r["config"]["per_class"]:
            assert len(r["acc"][m][k]) == len(transfer_curves.SEEDS), (m, k)


# --- chapter 07's distance and stem experiments ----------------------------------------------

def test_class_subset_relabels_and_keeps_only_those_classes():
    from convnets.data import TensorSplit
    from convnets.experiments.transfer_distance import class_subset, invert

    g = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 10
    X = torch.rand(40, 1, 4, 4, generator=g)
    split = TensorSplit(X, y, X[:20], y[:20], tuple(str(i) for i in range(10)))
    sub = class_subset(split, (7, 2, 9))
    # brute force: the images with label 7, 2 or 9, in their original order, labels 0, 1, 2
    keep = [i for i in range(40) if int(y[i]) in (7, 2, 9)]
    assert torch.equal(sub.X_train, X[keep])
    assert sub.y_train.tolist() == [{7: 0, 2: 1, 9: 2}[int(y[i])] for i in keep]
    assert sub.classes == ("7", "2", "9") and sub.num_classes == 3
    assert len(sub.y_test) == 6 and set(sub.y_test.tolist()) == {0, 1, 2}
    inv = invert(sub)
    torch.testing.assert_close(inv.X_train + sub.X_train, torch.ones_like(sub.X_train))
    assert torch.equal(inv.y_train, sub.y_train)


def test_relative_change_matches_a_direct_computation():
    from convnets.experiments.source_model import build_source_model
    from convnets.experiments.transfer_distance import relative_change

    torch.manual_seed(0)
    net = build_source_model()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        net.conv1.weight.mul_(1.5)                 # the stem's only kernel: change 0.5
        net.layer3[0].conv1.weight.zero_()         # one of layer3's kernels
        net.bn1.weight.add_(10.0)                  # batch-norm scales are not kernels: ignored
    ch = relative_change(net, before)
    assert set(ch) == {"conv1+bn1", "layer1", "layer2", "layer3"}
    assert ch["conv1+bn1"] == pytest.approx(0.5, rel=1e-6)
    assert ch["layer1"] == 0 and ch["layer2"] == 0
    keys = [k for k in before if k.startswith("layer3.") and before[k].ndim == 4]
    expect = (before["layer3.0.conv1.weight"].pow(2).sum() / sum(before[k].pow(2).sum() for k in keys)).sqrt()
    assert ch["layer3"] == pytest.approx(float(expect), rel=1e-5)


def test_train_on_freezes_the_stem_and_moves_the_rest():
    from convnets.data import digits
    from convnets.experiments.source_model import build_source_model
    from convnets.experiments.transfer_distance import relative_change, train_on

    torch.manual_seed(1)
    state = build_source_model().state_dict()
    split = digits(size=28).subset(2, 0)
    model, acc, before = train_on(split, 0, 3, init_state=state, lr=1e-3, freeze_until="conv1+bn1")
    ch = relative_change(model, before)
    assert ch["conv1+bn1"] == 0.0 and ch["layer3"] > 0
    assert torch.equal(model.bn1.running_mean, state["bn1.running_mean"])   # frozen batch norm kept
    assert 0 <= acc <= 1 and model.fc.out_features == 10


@pytest.mark.slow
def test_transfer_stem_and_distance_quick():
    import json

    from convnets.experiments import transfer_distance, transfer_stem

    r = transfer_stem.run(quick=True)
    json.dumps(r)
    assert r["change"]["digits"]["frozen_stem"][0]["conv1+bn1"] == 0.0
    assert r["change"]["digits"]["one_lr"][0]["conv1+bn1"] > 0
    d = transfer_distance.run(quick=True)
    json.dumps(d)
    for t in transfer_distance.TARGETS:
        for m in ("scratch", "probe", "full"):
            assert all(0 <= a <= 1 for a in d["acc"][t][m]["1"]), (t, m)
        assert d["gain"][t]["full"]["1"][0] == pytest.approx(d["acc"][t]["full"]["1"][0] - d["acc"][t]["scratch"]["1"][0])


@pytest.mark.parametrize("name", ["transfer_stem", "transfer_distance"])
def test_committed_stem_and_distance_results_are_complete(name):
    import json

    from convnets.experiments import results_dir

    path = results_dir() / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"results/{name}.json is absent")
    r = json.loads(path.read_text())
    assert r["config"]["seeds"] == [0, 1, 2]
    runs = r["acc"].values() if name == "transfer_stem" else [v for t in r["acc"].values() for v in t.values()]
    for arm in runs:
        for v in (arm.values() if isinstance(arm, dict) else [arm]):
            assert len(v) == 3 and all(0 <= a <= 1 for a in v)


# --- chapter 07's stage sweep ------------------------------------------------------------------

def test_sweep_head_on_features_is_training_through_the_frozen_network():
    """The sweep trains the head alone on features computed once; training the same head through
    the whole frozen network (batch norms in eval mode) with the same batches is the same
    computation: brute-force reference."""
    from convnets.data import digits
    from convnets.experiments import transfer_sweep
    from convnets.experiments.source_model import build_source_model
    from convnets.train import seed_everything
    from convnets.transfer import freeze, param_groups, replace_head

    torch.manual_seed(3)
    state = {k: v.clone() for k, v in build_source_model().state_dict().items()}
    split = digits(size=28).subset(2, 1)
    steps = 7
    curve = transfer_sweep.one_run(split, 1, 1, state, [3, steps])
    # reference: the whole network forward at every step, only fc trainable
    seed_everything(1)
    model = build_source_model()
    model.load_state_dict(state)
    replace_head(model, 10)
    freeze(model)
    opt = torch.optim.Adam(param_groups(model, transfer_sweep.LR, transfer_sweep.DECAY), lr=transfer_sweep.LR)
    gen = torch.Generator().manual_seed(1)
    n, done = len(split.y_train), 0
    while done < steps:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, transfer_sweep.BATCH_SIZE):
            if done == steps:
                break
            idx = perm[i:i + transfer_sweep.BATCH_SIZE]
            model.train()
            loss = torch.nn.functional.cross_entropy(model(split.X_train[idx]), split.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
    model.eval()
    with torch.no_grad():
        acc = float((model(split.X_test).argmax(1) == split.y_test).double().mean())
        train_loss = float(torch.nn.functional.cross_entropy(model(split.X_train), split.y_train))
    assert curve["test_acc"][-1] == pytest.approx(acc, abs=1 / len(split.y_test) + 1e-9)
    assert curve["train_loss"][-1] == pytest.approx(train_loss, rel=1e-4)
    assert len(curve["test_acc"]) == 2


def test_sweep_retrains_only_the_last_stages():
    from convnets.data import digits
    from convnets.experiments import transfer_sweep
    from convnets.experiments.source_model import build_source_model

    torch.manual_seed(0)
    state = build_source_model().state_dict()
    with pytest.raises(ValueError):
        transfer_sweep.one_run(digits(size=28).subset(1, 0), 0, 0, state, [1])
    curve = transfer_sweep.one_run(digits(size=28).subset(1, 0), 0, 2, state, [1, 2])
    assert set(curve) == {"test_acc", "train_loss", "train_acc"}
    assert all(0 <= a <= 1 for a in curve["test_acc"] + curve["train_acc"])


@pytest.mark.slow
def test_transfer_sweep_quick():
    import json

    from convnets.experiments import transfer_sweep

    r = transfer_sweep.run(quick=True)
    json.dumps(r)
    for t in transfer_sweep.TASKS:
        assert set(r["acc"][t]) == {"1", "5"}
        assert all(len(c["test_acc"]) == 2 for runs in r["curves"][t].values() for c in runs)
        assert r["acc"][t]["1"][0] == r["curves"][t]["1"][0]["test_acc"][-1]
        assert 0 <= r["probe"][t][0] <= 1


def test_committed_sweep_results_are_complete():
    import json

    from convnets.experiments import results_dir, transfer_sweep

    path = results_dir() / "transfer_sweep.json"
    if not path.is_file():
        pytest.skip("results/transfer_sweep.json is absent")
    r = json.loads(path.read_text())
    assert r["config"]["seeds"] == transfer_sweep.SEEDS
    assert r["config"]["stages"] == ["1", "2", "3", "4", "5"]
    for t in transfer_sweep.TASKS:
        assert len(r["probe"][t]) == 3
        for s, runs in r["curves"][t].items():
            cps = r["config"]["head_checkpoints"] if s == "1" else r["config"]["checkpoints"]
            assert len(runs) == 3 and all(len(c["test_acc"]) == len(cps) for c in runs), (t, s)
