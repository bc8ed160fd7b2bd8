"""convnets.init against torch.nn.init's statistics and against hand-computed probes."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from convnets.init import (
    SCHEMES,
    fans,
    hidden_unit_spread,
    init_layer_,
    init_weights,
    plain_cnn,
    plain_mlp,
    probe,
    scheme_std,
    weight_layers,
)

SHAPES = [(300, 500), (64, 3, 7, 7), (32, 16, 3, 3), (128, 64, 1, 1), (16, 8, 5)]


def _layer(shape: tuple[int, ...]) -> nn.Module:
    if len(shape) == 2:
        return nn.Linear(shape[1], shape[0])
    if len(shape) == 3:
        return nn.Conv1d(shape[1], shape[0], shape[2])
    return nn.Conv2d(shape[1], shape[0], shape[2:])


@pytest.mark.parametrize("shape", SHAPES)
def test_fans_match_torch(shape):
    w = torch.empty(shape)
    assert fans(w) == nn.init._calculate_fan_in_and_fan_out(w)


def test_fans_reject_vectors():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        fans(torch.empty(10))
    with pytest.raises(TypeError):
        fans([1, 2])


# (our scheme, kwargs, torch's initialiser applied to a weight)
TORCH_REFERENCE = [
    ("he", {"mode": "fan_in"}, lambda w: nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu")),
    ("he", {"mode": "fan_out"}, lambda w: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")),
    ("he_uniform", {"mode": "fan_in"}, lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu")),
    ("xavier", {}, nn.init.xavier_normal_),
    ("xavier_uniform", {}, nn.init.xavier_uniform_),
    ("default", {}, lambda w: nn.init.kaiming_uniform_(w, a=math.sqrt(5))),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("scheme,kwargs,reference", TORCH_REFERENCE, ids=lambda x: str(x) if isinstance(x, str) else "")
def test_schemes_match_torch_nn_init_statistics(shape, scheme, kwargs, reference):
    torch.manual_seed(0)
    layer = _layer(shape)
    init_weights(layer, scheme, **kwargs)
    ref = torch.empty(shape)
    reference(ref)
    n = layer.weight.numel()
    expected = scheme_std(scheme, *fans(ref), mode=kwargs.get("mode", "fan_in"))
    # the std of n draws has a relative standard error of about 1/sqrt(2n); allow 6 of them
    tol = 6 / math.sqrt(2 * n)
    assert layer.weight.std().item() == pytest.approx(expected, rel=tol)
    assert ref.std().item() == pytest.approx(expected, rel=tol)
    assert abs(layer.weight.mean().item()) < 6 * expected / math.sqrt(n)
    # same law: same range for the uniform ones, and the normal ones reach beyond sqrt(3) std
    if "uniform" in scheme or scheme == "default":
        bound = math.sqrt(3) * expected
        assert layer.weight.abs().max().item() <= bound * (1 + 1e-6)
        assert ref.abs().max().item() <= bound * (1 + 1e-6)
    else:
        assert (layer.weight.abs() > 2 * expected).float().mean().item() > 0.02


def test_default_is_pytorchs_reset_parameters():
    torch.manual_seed(3)
    a = nn.Conv2d(8, 16, 3)
    torch.manual_seed(3)
    b = nn.Conv2d(8, 16, 3)
    init_weights(b, "he")
    torch.manual_seed(3)
    init_weights(b, "default")
    torch.testing.assert_close(b.weight, a.weight)
    torch.testing.assert_close(b.bias, a.bias)


def test_slide_formula_doubles_he_variance():
    torch.manual_seed(0)
    layer = nn.Linear(400, 2000)
    init_weights(layer, "slide")
    var_slide = layer.weight.var().item()
    init_weights(layer, "he")
    var_he = layer.weight.var().item()
    assert var_slide == pytest.approx(4 / 400, rel=0.02)
    assert var_he == pytest.approx(2 / 400, rel=0.02)
    assert var_slide / var_he == pytest.approx(2.0, rel=0.03)


def test_constant_normal_biases_and_generator():
    net = plain_mlp(depth=3, width=8, in_features=5, bias=True)
    init_weights(net, "constant", value=0.25, bias=0.5)
    for _, m in weight_layers(net):
        assert torch.all(m.weight == 0.25) and torch.all(m.bias == 0.5)
    init_weights(net, "normal", std=0.01)
    for _, m in weight_layers(net):
        assert torch.all(m.bias == 0)
    a = init_weights(nn.Linear(50, 50), "he", generator=torch.Generator().manual_seed(1)).weight
    b = init_weights(nn.Linear(50, 50), "he", generator=torch.Generator().manual_seed(1)).weight
    torch.testing.assert_close(a, b)


def test_norm_layers_untouched_and_bad_input():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    init_weights(net, "he")
    assert torch.all(net[1].weight == 1) and torch.all(net[1].bias == 0)
    with pytest.raises(ValueError, match="unknown scheme"):
        init_weights(net, "lecun")
    with pytest.raises(ValueError, match="std="):
        init_weights(net, "normal")
    with pytest.raises(ValueError, match="mode"):
        init_weights(net, "he", mode="fan_avg")
    with pytest.raises(TypeError, match="BatchNorm2d"):
        init_layer_(net[1], "he")
    assert set(SCHEMES) >= {"constant", "normal", "slide", "xavier", "he", "default"}


def _manual_stats(net: nn.Sequential, X: torch.Tensor, y: torch.Tensor):
    """Reference: run the layers one by one and keep every weight layer's output."""
    outs = []
    h = X
    for m in net:
        h = m(h)
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            h.retain_grad()
            outs.append(h)
    nn.functional.cross_entropy(h, y).backward()
    return outs


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_probe_matches_hand_computation_and_leaves_model_alone(kind):
    torch.manual_seed(0)
    if kind == "mlp":
        net, X = plain_mlp(depth=4, width=32, in_features=20, bias=True), torch.randn(64, 20)
    else:
        net, X = plain_cnn(depth=4, width=8, in_channels=3, bias=True), torch.randn(16, 3, 12, 12)
    y = torch.randint(0, 10, (len(X),))
    inplace = nn.Sequential(*[nn.ReLU(inplace=True) if isinstance(m, nn.ReLU) else m for m in net])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.eval()
    res = probe(inplace, X, y)
    assert not net.training, "probe changed the train/eval mode"
    assert all(p.grad is None for p in net.parameters()), "probe wrote .grad"
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k])

    ref_net = nn.Sequential(*[nn.ReLU() if isinstance(m, nn.ReLU) else m for m in net])
    outs = _manual_stats(ref_net, X, y)
    assert len(res) == len(outs) == 4
    got = torch.tensor([res.act_mean, res.act_std, res.grad_mean, res.grad_std], dtype=torch.float64)
    want = torch.tensor([[o.mean().item() for o in outs], [o.std().item() for o in outs],
                         [o.grad.mean().item() for o in outs], [o.grad.std().item() for o in outs]],
                        dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-9)
    wg = torch.tensor(res.weight_grad_std, dtype=torch.float64)
    torch.testing.assert_close(wg, torch.tensor([m.weight.grad.std().item() for _, m in weight_layers(ref_net)],
                                                dtype=torch.float64), rtol=1e-5, atol=1e-9)


def test_probe_has_one_definition_cross_entropy_on_labels():
    """The probe's loss is the mean cross-entropy against the labels: its value and the gradient
    at the output are torch's (softmax - one-hot) / N; without labels it refuses to run."""
    torch.manual_seed(0)
    net = plain_mlp(depth=3, width=64, in_features=30)
    X, y = torch.randn(512, 30), torch.randint(0, 10, (512,))
    r = probe(net, X, y)
    with torch.no_grad():
        out = net(X)
    assert r.loss == pytest.approx(nn.functional.cross_entropy(out, y).item(), rel=1e-6)
    g = (torch.softmax(out, 1) - nn.functional.one_hot(y, 10)) / len(X)
    assert r.grad_std[-1] == pytest.approx(g.std().item(), rel=1e-5)
    assert r.names == ["1", "3", "5"] and r.kinds == ["Linear"] * 3
    assert "act std" in r.table()
    with pytest.raises(TypeError):
        probe(net, X)  # type: ignore[call-arg]


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_deep_relu_profiles(kind):
    """He keeps the scale within a small factor over 30 layers; the others explode or vanish."""
    torch.manual_seed(0)
    X = torch.rand(64, 1, 28, 28) if kind == "mlp" else torch.rand(16, 1, 16, 16)
    y = torch.randint(0, 10, (len(X),))
    net = plain_mlp(depth=30, width=128, in_features=784) if kind == "mlp" else plain_cnn(depth=30, width=16)
    ratio = {}
    for scheme in ["he", "slide", "xavier", "default"]:
        init_weights(net, scheme, generator=torch.Generator().manual_seed(0))
        r = probe(net, X, y)
        ratio[scheme] = r.act_std[-2] / r.act_std[0]
    assert 0.05 < ratio["he"] < 20
    assert ratio["slide"] > 100
    assert ratio["xavier"] < 1e-2
    assert ratio["default"] < 1e-6


def test_plain_nets_and_symmetry():
    X = torch.rand(2, 1, 28, 28)
    assert plain_cnn(depth=6, width=4, downsample_at=(2, 4))(X).shape == (2, 10)
    assert plain_mlp(depth=3, width=4)(X).shape == (2, 10)
    with pytest.raises(ValueError, match="downsample_at"):
        plain_cnn(depth=4, downsample_at=(4,))
    net = plain_mlp(depth=3, width=16)
    init_weights(net, "constant", value=0.01)
    assert hidden_unit_spread(net[1]) == 0.0
    init_weights(net, "he")
    assert hidden_unit_spread(net[1]) > 0.1


def test_static_explorer_builds():
    pytest.importorskip("ipywidgets")
    from convnets.explore.init import scale_explorer

    box = scale_explorer(torch.rand(32, 1, 28, 28), torch.randint(0, 10, (32,)), gains=(0.5, 1.0), depth=6)
    stack = box.children[1]
    assert len(stack.children) == 2 and all(len(im.value) > 1000 for im in stack.children)


@pytest.mark.slow
def test_experiment_quick():
    from convnets.experiments import initialization

    res = initialization.run(quick=True)
    assert set(res["schemes"]) <= set(res["histories"])
    for runs in res["histories"].values():
        assert len(runs) == len(res["config"]["seeds"])
        for h in runs:
            assert len(h["train_loss"]) == res["config"]["epochs"]


@pytest.mark.slow
def test_initialization_run_one_is_one_run_of_run():
    """A run computed alone (``run_one``, as the seeds of the chapter's results were) equals the
    same scheme and seed inside ``run``: same history and initial profile (CPU, quick size)."""
    from convnets.data import mnist5k
    from convnets.experiments import initialization

    res = initialization.run(quick=True, device="cpu")
    cfg = res["config"]
    data = mnist5k().subset(per_class=10)
    for label in ("He, fan_in", "Xavier"):
        one = initialization.run_one(label, cfg["seeds"][0], cfg, data, "cpu")
        assert one["init_act_std"] == res["init_act_std"][label][0]
        for key in ("train_loss", "val_acc", "val_loss"):
            assert one["history"][key] == res["histories"][label][0][key]
