"""Tests for convnets.interpret against independent references: the receptive field against the
support of a gradient and published values, the patch search against brute force, saliency
against autograd written out by hand."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convnets import interpret as I


def _brute_box(model: nn.Module, layer: str | None, size: int, channels: int = 1):
    """The input pixels that one central unit of ``layer`` depends on, found from the support of
    its gradient (max poolings replaced by average poolings so every input of a window counts;
    positive weights, float64 so nothing underflows)."""
    model = copy.deepcopy(model).double().eval()
    for m in list(model.modules()):
        for n, c in list(m.named_children()):
            if isinstance(c, nn.MaxPool2d):
                setattr(m, n, nn.AvgPool2d(c.kernel_size, c.stride, c.padding, ceil_mode=c.ceil_mode))
            elif isinstance(c, (nn.ReLU6, nn.Hardtanh)):
                setattr(m, n, nn.ReLU())
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.1)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.zero_()
                m.running_var.fill_(1)
    got = {}
    mod = model.get_submodule(layer) if layer else model
    h = mod.register_forward_hook(lambda m, i, o: got.__setitem__("a", o))
    x = torch.full((1, channels, size, size), 0.5, dtype=torch.float64, requires_grad=True)
    model(x)
    h.remove()
    a = got["a"]
    i, j = a.shape[2] // 2, a.shape[3] // 2
    (g,) = torch.autograd.grad(a[0, :, i, j].sum(), x)
    nz = (g[0].abs().sum(0) > 0).nonzero()
    top, left = nz.min(0).values.tolist()
    bottom, right = nz.max(0).values.tolist()
    return (i, j), (top, left, bottom + 1, right + 1)


def _check_against_gradient(model, layer, size, channels=1):
    rf = I.receptive_field(model, layer, input_size=(1, channels, size, size))
    (i, j), box = _brute_box(model, layer, size, channels)
    t, l, b, r = rf.box(i, j)
    assert (max(t, 0), max(l, 0), min(b, size), min(r, size)) == box, (layer, rf, box)
    return rf


def test_receptive_field_sequential_formula():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3))
    rf = I.receptive_field(net)
    assert rf == I.ReceptiveField((8, 8), (2, 2), (-1, -1))
    assert I.receptive_field(list(net)) == rf
    assert I.receptive_field(net, "0") == I.ReceptiveField((3, 3), (1, 1), (-1, -1))
    assert I.receptive_field(net, net[2]) == I.ReceptiveField((4, 4), (2, 2), (-1, -1))


@pytest.mark.parametrize("layer", ["1", "3", "5", "6"])
def test_receptive_field_dilation_stride_rectangular(layer):
    net = nn.Sequential(
        nn.Conv2d(1, 3, (3, 5), stride=(1, 2), padding=(1, 2)), nn.ReLU(),
        nn.Conv2d(3, 3, 3, dilation=2, padding=2), nn.AvgPool2d(3, stride=2, padding=1),
        nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 3, padding="same"), nn.MaxPool2d(2, ceil_mode=True),
    )
    _check_against_gradient(net, layer, 41)


@pytest.mark.parametrize("layer", ["conv1", "layer1.0", "layer2.0", "layer2", "layer3"])
def test_receptive_field_resnet_cifar_with_strided_zero_pad_shortcut(layer):
    models = pytest.importorskip("convnets.models")
    if "resnet_cifar" not in models.list_models():
        pytest.skip("resnet_cifar not available")
    net = models.create_model("resnet_cifar", depth=14, width=4)
    _check_against_gradient(net, layer, 48)


def test_receptive_field_known_imagenet_values():
    tv = pytest.importorskip("torchvision")
    # Published receptive fields (Araujo et al. 2019, Distill): AlexNet pool5 195, VGG-16
    # conv5_3 196 and pool5 212, ResNet-18 layer4 435.
    # Built on the meta device: no weights are allocated, the shapes are enough.
    with torch.device("meta"):
        alexnet, vgg, resnet = tv.models.alexnet(), tv.models.vgg16(), tv.models.resnet18()
    assert I.receptive_field(alexnet, "features.12").size == (195, 195)
    assert I.receptive_field(vgg, "features.28").size == (196, 196)
    assert I.receptive_field(vgg, "features.30").size == (212, 212)
    rf = I.receptive_field(resnet, "layer4")
    assert rf.size == (435, 435) and rf.stride == (32, 32)


def test_receptive_field_torchvision_resnet_matches_gradient():
    tv = pytest.importorskip("torchvision")
    _check_against_gradient(tv.models.resnet18(), "layer2", 96, channels=3)


def test_receptive_field_rejects_global_layers_and_bad_names():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))
    with pytest.raises(ValueError, match="whole input"):
        I.receptive_field(net, "3")
    with pytest.raises(ValueError, match="no layer"):
        I.receptive_field(net, "nope")
    with pytest.raises(TypeError):
        I.receptive_field(net, 3)


def _tiny_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 5, 3), nn.ReLU(),
    )


def test_top_activating_patches_brute_force():
    net = _tiny_model()
    g = torch.Generator().manual_seed(1)
    X = torch.rand(53, 2, 16, 16, generator=g)
    P = I.top_activating_patches(net, "3", X, k=4, batch_size=10)
    rf = I.receptive_field(net, "3")
    assert P.values.shape == (5, 4) and P.indices.dtype == torch.int64
    assert P.crops.shape == (5, 4, 2, *rf.size)
    with torch.no_grad():
        A = net[:4](X)  # (N, 5, h, w)
    flat = A.flatten(2)
    best, where = flat.max(2)
    for c in range(5):
        v, idx = best[:, c].sort(descending=True)
        torch.testing.assert_close(P.values[c], v[:4])
        assert P.indices[c].tolist() == idx[:4].tolist()
        for r in range(4):
            n = int(idx[r])
            pos = int(where[n, c])
            i, j = divmod(pos, A.shape[3])
            assert P.positions[c, r].tolist() == [i, j]
            t, l, b, rr = rf.box(i, j)
            padded = F.pad(X[n], (20, 20, 20, 20))
            torch.testing.assert_close(P.crops[c, r], padded[:, t + 20 : b + 20, l + 20 : rr + 20])


def test_top_activating_patches_loader_channels_and_module():
    net = _tiny_model()
    X = torch.rand(30, 2, 12, 12, generator=torch.Generator().manual_seed(2))
    y = torch.zeros(30, dtype=torch.long)
    loader = [(X[i : i + 7], y[i : i + 7]) for i in range(0, 30, 7)]
    a = I.top_activating_patches(net, net[3], loader, k=3, channels=[4, 1])
    b = I.top_activating_patches(net, "3", X, k=3)
    assert a.channels == [4, 1]
    torch.testing.assert_close(a.values, b.values[[4, 1]])
    assert torch.equal(a.indices, b.indices[[4, 1]])
    assert a.grid().shape[0] == 2
    with pytest.raises(ValueError):
        I.top_activating_patches(net, "3", X, k=0)
    with pytest.raises(ValueError):
        I.top_activating_patches(net, "3", X, k=3, channels=[9])


def test_top_activating_patches_keeps_mode_and_sees_pre_inplace_relu():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(inplace=True))
    net.train()
    X = -torch.rand(5, 1, 8, 8)  # negative inputs: some pre-ReLU responses are negative
    with torch.no_grad():
        net[0].bias.fill_(-5.0)
    P = I.top_activating_patches(net, "0", X, k=2)
    assert net.training
    assert (P.values < 0).all(), "responses must be read before the in-place ReLU"


class _Linear2d(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 5)
        self.fc = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def test_class_model_score_rises_and_wins():
    net = _Linear2d()
    r = I.class_model(net, 2, (1, 12, 12), steps=60, lr=0.5)
    assert r.image.shape == (1, 12, 12) and r.image.dtype == torch.float32
    assert len(r.scores) == 61
    assert r.scores[-1] > r.scores[0]
    assert int(r.logits.argmax()) == 2
    with torch.no_grad():
        torch.testing.assert_close(net(r.image[None])[0], r.logits)


def test_class_model_l2_shrinks_and_matches_formula():
    net = _Linear2d()
    a = I.class_model(net, 1, (1, 12, 12), steps=40, lr=0.2, l2=0.0)
    b = I.class_model(net, 1, (1, 12, 12), steps=40, lr=0.2, l2=0.5)
    assert b.norms[-1] < a.norms[-1]
    # one step by hand: x1 = x0 + lr * (dS/dx - 2 l2 x0)
    x0 = torch.rand(1, 12, 12, generator=torch.Generator().manual_seed(0))
    one = I.class_model(net, 1, (1, 12, 12), steps=1, lr=0.3, l2=0.5, init=x0)
    x = x0[None].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(net(x)[0, 1], x)
    torch.testing.assert_close(one.image, (x0[None] + 0.3 * (g - 2 * 0.5 * x0[None]))[0])


def test_class_model_log_softmax_regularisers_and_seed():
    net = _Linear2d()
    kw = dict(steps=20, lr=0.5, objective="log_softmax", init="noise", jitter=2, blur_sigma=0.7,
              blur_every=3, clip=(-1.0, 1.0), clip_norm_pct=10.0, seed=3)
    a = I.class_model(net, 0, (1, 12, 12), **kw)
    b = I.class_model(net, 0, (1, 12, 12), **kw)
    torch.testing.assert_close(a.image, b.image)
    assert a.image.abs().max() <= 1.0
    plain = I.class_model(net, 0, (1, 12, 12), steps=20, lr=0.5, objective="log_softmax")
    assert plain.objective[-1] > plain.objective[0]
    with pytest.raises(ValueError):
        I.class_model(net, 0, (1, 12, 12), objective="softmax")
    with pytest.raises(ValueError):
        I.class_model(net, 5, (1, 12, 12), steps=1)


def test_gaussian_blur_keeps_mean_and_matches_kernel_sum():
    x = torch.rand(2, 3, 20, 20, generator=torch.Generator().manual_seed(0))
    y = I.gaussian_blur(x, 1.0)
    assert y.shape == x.shape
    assert y.std() < x.std()
    torch.testing.assert_close(I.gaussian_blur(torch.ones(1, 1, 9, 9), 1.5), torch.ones(1, 1, 9, 9))


def test_saliency_equals_autograd():
    net = _Linear2d()
    X = torch.rand(3, 1, 12, 12, generator=torch.Generator().manual_seed(4))
    s = I.saliency(net, X, torch.tensor([0, 2, 1]))
    assert s.shape == (3, 12, 12) and s.dtype == torch.float32
    for n, c in enumerate([0, 2, 1]):
        x = X[n : n + 1].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(net(x)[0, c], x)
        torch.testing.assert_close(s[n], g[0].abs().amax(0))
    assert I.saliency(net, X[0]).shape == (12, 12)


def test_filters_and_grids():
    net = _tiny_model()
    assert I.first_conv(net) is net[0]
    g = I.filter_grid(net)  # 4 filters x 2 input channels, gray tiles
    assert g.shape[0] == 1 and 0 <= g.min() and g.max() <= 1
    rgb = I.filter_grid(torch.randn(6, 3, 5, 5), nrow=3)
    assert rgb.shape == (3, 2 * 6 + 1, 3 * 6 + 1)
    with pytest.raises(ValueError):
        I.first_conv(nn.Linear(2, 2))


@pytest.mark.gpu
def test_on_cuda():
    net = _Linear2d().cuda()
    r = I.class_model(net, 1, (1, 12, 12), steps=5, lr=0.5)
    assert r.image.device.type == "cpu"
    X = torch.rand(20, 1, 12, 12, device="cuda")
    P = I.top_activating_patches(net, "conv", X, k=3)
    assert P.crops.shape[-2:] == (5, 5)
    assert I.saliency(net, X).device.type == "cuda"


def test_class_model_batch_of_targets_equals_single_runs():
    net = _Linear2d()
    both = I.class_model(net, [2, 0], (1, 12, 12), steps=15, lr=0.5, l2=0.1)
    assert both.image.shape == (2, 1, 12, 12) and both.logits.shape == (2, 3)
    for n, t in enumerate([2, 0]):
        one = I.class_model(net, t, (1, 12, 12), steps=15, lr=0.5, l2=0.1)
        torch.testing.assert_close(both.image[n], one.image)
        assert abs(both.scores[-1][n] - one.scores[-1]) < 1e-4


# ---- activation maximisation and DeepDream (additions for chapter 8) ----

def _one_conv(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.Identity()).eval()


def test_activation_maximization_converges_to_the_closed_form():
    """For one linear convolution the objective mean_ij A_c,ij(x) - l2 ||x||^2 is a concave
    quadratic: its maximiser is g / (2 l2), g the sum of the kernel over the positions that
    cover each pixel divided by the number of positions (computed here by a loop)."""
    net = _one_conv()
    w = net[0].weight.detach()[1, 0]  # channel 1, (3, 3)
    H = 6
    g = torch.zeros(H, H)
    for i in range(H - 2):
        for j in range(H - 2):
            g[i : i + 3, j : j + 3] += w
    g /= (H - 2) ** 2
    l2 = 0.5
    r = I.activation_maximization(net, "0", 1, (1, H, H), steps=300, lr=0.4, l2=l2, init="zeros",
                                  normalize_grad=False)
    torch.testing.assert_close(r.image[0, 0], g / (2 * l2), atol=1e-5, rtol=1e-4)
    assert r.objective[-1][0] > r.objective[0][0]


def test_activation_maximization_channels_layer_and_regularisers():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1)).eval()
    x0 = torch.rand(1, 10, 10, generator=torch.Generator().manual_seed(7))
    kw = dict(steps=30, lr=0.05, jitter=1, blur_sigma=0.5, clip=(0.0, 1.0), seed=1, init=x0)
    r = I.activation_maximization(net, "2", [0, 2], (1, 10, 10), **kw)
    assert r.image.shape == (2, 1, 10, 10)
    assert 0.0 <= r.image.min() and r.image.max() <= 1.0
    assert all(r.activation[-1][n] > r.activation[0][n] for n in range(2))
    again = I.activation_maximization(net, "2", [0, 2], (1, 10, 10), **kw)
    torch.testing.assert_close(r.image, again.image)
    # one channel alone gives the same image as its row of the batch (images are independent)
    one = I.activation_maximization(net, "2", 2, (1, 10, 10), **kw)
    torch.testing.assert_close(one.image[0], r.image[1])
    # the layer objective, mean A^2 / 2, checked at the start against a direct computation
    lay = I.activation_maximization(net, "2", None, (1, 10, 10), steps=5, lr=0.05)
    x0 = 0.4 + 0.2 * torch.rand(1, 1, 10, 10, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert abs(lay.activation[0][0] - 0.5 * net(x0).pow(2).mean().item()) < 1e-5
    assert lay.activation[-1][0] > lay.activation[0][0]
    with pytest.raises(ValueError):
        I.activation_maximization(net, "2", 5, (1, 10, 10), steps=1)


def test_deep_dream_keeps_the_photo_size_and_raises_the_layer():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()).eval()
    photo = torch.rand(1, 30, 40, generator=torch.Generator().manual_seed(2))
    d = I.deep_dream(net, "3", photo, octaves=2, steps=5, lr=0.05)
    assert d.image.shape == (1, 1, 30, 40)
    assert 0.0 <= d.image.min() and d.image.max() <= 1.0
    with torch.no_grad():
        before = 0.5 * net(photo[None]).pow(2).mean()
        after = 0.5 * net(d.image).pow(2).mean()
    assert after > before


@pytest.mark.slow
def test_interpretation_experiment_quick():
    """The chapter's cached experiment at a reduced size: every part is there and consistent."""
    from convnets.experiments import interpretation

    r = interpretation.run(quick=True)
    for kind in ("lenet", "resnet"):
        sal = r["saliency"][kind]["band2"][0]
        assert abs(sum(sal[g]["area"] for g in ("ink", "band", "far")) - 1) < 1e-5
        assert abs(sum(sal[g]["mass"] for g in ("ink", "band", "far")) - 1) < 1e-4
        # erasing with black changes nothing where no square touches ink
        assert r["occlusion"][kind]["erase"][0]["far"]["density"] < 0.2
        assert set(r["purity"][kind][0]) == set(interpretation.LAYERS[kind])
        assert len(r["class_models"][kind]["won"]["0.01"]) == 1
    assert max(r["gradcam"]["cam_identity_rel_gap"]) < 1e-5
    assert r["dream"]["energy_after"][0] > r["dream"]["energy_before"][0]


@pytest.mark.slow
def test_interpretation_gallery_matches_direct_computation():
    """The chapter's cached gallery holds what the library computes when called directly."""
    from convnets.data import mnist5k
    from convnets.experiments import interpretation
    from convnets.experiments.source_model import build_source_model
    from convnets.models import lenet5

    torch.manual_seed(0)
    lenet, resnet = lenet5(image_size=28).eval(), build_source_model().eval()
    g = interpretation.gallery(lenet, resnet, quick=True)
    for name, net in (("LeNet-5", lenet), ("ResNet-8", resnet)):
        cm = g["class_models"][name]
        assert set(cm) == set(interpretation.LAMBDAS) | {"log_softmax", "regularised"}
        direct = I.class_model(net, list(range(10)), (1, 28, 28), steps=20, lr=0.1, l2=0.1)
        assert cm[0.1]["image"].shape == (10, 1, 28, 28)
        assert torch.allclose(cm[0.1]["image"].float(), direct.image, atol=1e-2, rtol=1e-2), name
        assert torch.allclose(cm[0.1]["logits"], direct.logits, atol=1e-4), name
    X = mnist5k().X_test
    for layer in ("layer1", "layer2", "layer3"):
        am = g["actmax"][layer]
        expected = interpretation.live_channels(I.top_activating_patches(resnet, layer, X, k=9), 8)
        assert am["channels"] == expected, layer
        assert am["image"].shape == (len(expected), 1, 28, 28)
        assert 0.0 <= float(am["image"].min()) and float(am["image"].max()) <= 1.0
    assert g["dream_channel"] == g["actmax"]["layer3"]["channels"][0]
    for row in ("layer2", "layer3"):
        assert len(g["dreams"][row]) == len(g["photos"])
        assert all(d.shape[0] == 1 and min(d.shape[1:]) == 128 for d in g["dreams"][row])


def test_patch_mosaic_places_each_patch_in_its_row_and_column():
    """The explorer's one-image grid: patch i of a row of k sits at row i // k, column i % k,
    with one white pixel between tiles (checked against a concatenation built by hand)."""
    from convnets.explore.interpret import _mosaic

    tiles = torch.rand(6, 1, 3, 4)
    m = _mosaic(tiles, rows=2, k=3)
    white_col, white_row = torch.ones(3, 1), torch.ones(1, 3 * 4 + 2)
    row = lambda r: torch.cat([tiles[3 * r, 0], white_col, tiles[3 * r + 1, 0], white_col, tiles[3 * r + 2, 0]], 1)
    assert torch.equal(m, torch.cat([row(0), white_row, row(1)], 0))
    rgb = _mosaic(torch.rand(4, 3, 2, 2), rows=2, k=2)
    assert rgb.shape == (5, 5, 3)
