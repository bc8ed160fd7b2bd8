"""Tests for convnets.attribution against independent references: occlusion against an explicit
loop over windows, Grad-CAM against a hand computation (the layers run one by one) and against
the class activation map of a GAP + linear head, the stroke regions against a loop over pixels."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from convnets import attribution as A
from convnets.models import resnet_cifar


def _tiny_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 8 * 8, 5)).eval()


def test_occlusion_positions_match_an_explicit_loop():
    net = _tiny_net()
    torch.manual_seed(1)
    x = torch.rand(3, 1, 8, 8)
    target = torch.tensor([0, 3, 4])
    drop, rows, cols = A.occlusion_positions(net, x, target, window=3, stride=2, fill=0.5, batch_size=7)
    assert rows == cols == [0, 2, 4, 5]  # the last window is flush with the edge
    with torch.no_grad():
        for n in range(3):
            base = net(x[n : n + 1])[0, target[n]]
            for i, r in enumerate(rows):
                for j, c in enumerate(cols):
                    xo = x[n : n + 1].clone()
                    xo[..., r : r + 3, c : c + 3] = 0.5
                    want = base - net(xo)[0, target[n]]
                    assert torch.allclose(drop[n, i, j], want, atol=1e-5), (n, r, c)


def test_occlusion_map_is_the_mean_over_covering_windows():
    net = _tiny_net(2)
    torch.manual_seed(3)
    x = torch.rand(2, 1, 8, 8)
    drop, rows, cols = A.occlusion_positions(net, x, 1, window=4, stride=4, score="prob")
    got = A.occlusion(net, x, 1, window=4, stride=4, score="prob")
    # windows do not overlap at stride = window: each pixel carries exactly its window's drop
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            assert torch.allclose(got[:, r : r + 4, c : c + 4], drop[:, i, j, None, None].expand(2, 4, 4))
    # overlapping windows: a brute-force average for one pixel
    got2 = A.occlusion(net, x[:1], 1, window=4, stride=2)
    d2, rows2, cols2 = A.occlusion_positions(net, x[:1], 1, window=4, stride=2)
    py, px = 3, 5
    vals = [d2[0, i, j] for i, r in enumerate(rows2) for j, c in enumerate(cols2)
            if r <= py < r + 4 and c <= px < c + 4]
    assert torch.allclose(got2[0, py, px], torch.stack(vals).mean(), atol=1e-6)


def test_occlusion_of_a_blank_region_changes_nothing():
    net = _tiny_net()
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, :4, :4] = 1.0  # ink only in the top-left quarter
    got = A.occlusion(net, x, 0, window=2, stride=2, fill=0.0)
    assert torch.count_nonzero(got[4:, 4:]) == 0
    assert got[:4, :4].abs().sum() > 0


def test_grad_cam_by_hand_on_a_tiny_net():
    net = _tiny_net(4)
    torch.manual_seed(5)
    x = torch.rand(2, 1, 8, 8)
    target = torch.tensor([2, 1])
    got = A.grad_cam(net, x, "2", target, upsample=False, relu=False)
    # by hand: run the layers one by one, differentiate the score with respect to conv2's output
    a = net[2](net[1](net[0](x))).detach().requires_grad_(True)
    s = net[5](net[4](net[3](a)))
    (g,) = torch.autograd.grad(s[torch.arange(2), target].sum(), a)
    alpha = g.sum((2, 3)) / 64
    want = torch.einsum("nk,nkhw->nhw", alpha, a.detach())
    torch.testing.assert_close(got, want)
    pos = A.grad_cam(net, x, "2", target, upsample=False)
    torch.testing.assert_close(pos, want.clamp_min(0))
    up = A.grad_cam(net, x, "2", target)
    assert up.shape == (2, 8, 8)


def test_grad_cam_is_the_positive_class_activation_map_for_a_gap_linear_head():
    torch.manual_seed(0)
    net = resnet_cifar(depth=8, in_channels=1, num_classes=10, width=4).eval()
    for m in net.modules():  # non-trivial batch-norm statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.rand(3, 1, 28, 28)
    target = torch.tensor([0, 5, 9])
    cam = A.class_activation_map(net, x, "layer3", net.fc, target)
    assert cam.shape == (3, 7, 7)
    gc = A.grad_cam(net, x, "layer3", target, upsample=False)
    torch.testing.assert_close(gc, cam.clamp_min(0) / 49, atol=1e-6, rtol=1e-5)
    # the CAM's spatial mean plus the bias is the class score
    with torch.no_grad():
        logits = net(x)
    torch.testing.assert_close(cam.mean((1, 2)) + net.fc.bias[target], logits[torch.arange(3), target],
                               atol=1e-5, rtol=1e-5)


def test_grad_cam_leaves_the_model_as_it_was():
    net = _tiny_net()
    net.train()
    A.grad_cam(net, torch.rand(1, 8, 8), "0", 0)
    assert net.training
    assert all(p.grad is None for p in net.parameters())


def test_stroke_regions_against_a_pixel_loop():
    torch.manual_seed(0)
    x = (torch.rand(2, 1, 12, 12) > 0.9).float()
    reg = A.stroke_regions(x, ink=0.5, band=1)
    for n in range(2):
        for i in range(12):
            for j in range(12):
                ink = bool(x[n, 0, i, j] > 0.5)
                near = bool((x[n, 0, max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2] > 0.5).any())
                assert bool(reg["ink"][n, i, j]) == ink
                assert bool(reg["band"][n, i, j]) == (near and not ink)
                assert bool(reg["far"][n, i, j]) == (not near)


def test_region_shares_of_an_even_map_have_density_one():
    x = torch.zeros(1, 1, 10, 10)
    x[0, 0, 4:6, 4:6] = 1
    reg = A.stroke_regions(x, band=1)
    sh = A.region_shares(torch.ones(1, 10, 10), reg)
    for r in ("ink", "band", "far"):
        assert torch.allclose(sh[r]["density"], torch.ones(1))
    assert torch.allclose(sh["ink"]["area"], torch.tensor([0.04]))
    assert torch.allclose(sh["band"]["area"], torch.tensor([0.12]))
    only_ink = A.region_shares(x[:, 0], reg)
    assert torch.allclose(only_ink["ink"]["mass"], torch.ones(1))
    assert torch.allclose(only_ink["ink"]["density"], torch.tensor([25.0]))
    with pytest.raises(ValueError):
        A.region_shares(-torch.ones(1, 10, 10), reg)
