"""Xception, SE, MobileNetV2 and EfficientNet-B0 against torchvision and the papers' counts."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from convnets.models import (SeparableConv2d, SqueezeExcitation, efficientnet, efficientnet_b0, mobilenet_v2,
                             se_resnet50, xception)
from convnets.models.mobilenet import InvertedResidual
from convnets.utils import count_parameters


def test_xception_count_table3():
    assert count_parameters(xception()) == 22_855_952  # Chollet 2017, Table 3


def test_se_resnet50_count():
    assert count_parameters(se_resnet50()) == 28_088_024  # timm seresnet50


@pytest.mark.parametrize("ours,ref,count", [
    (mobilenet_v2, torchvision.models.mobilenet_v2, 3_504_872),
    (efficientnet_b0, torchvision.models.efficientnet_b0, 5_288_548),
])
def test_torchvision_state_dict_loads_and_outputs_match(ours, ref, count):
    torch.manual_seed(0)
    r = ref(weights=None).eval()
    for m in r.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    o = ours().eval()
    o.load_state_dict(r.state_dict(), strict=True)
    assert count_parameters(o) == count
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(o(x), r(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(8, 16, 3, 1), (5, 7, 5, 2), (32, 64, 3, 2)])
def test_separable_conv_is_depthwise_then_pointwise(shape):
    cin, cout, k, s = shape
    torch.manual_seed(0)
    sep = SeparableConv2d(cin, cout, k, s)
    assert count_parameters(sep) == k * k * cin + cin * cout
    x = torch.randn(2, cin, 11, 11)
    dw = torch.nn.functional.conv2d(x, sep.depthwise.weight, stride=s, padding=k // 2, groups=cin)
    expected = torch.nn.functional.conv2d(dw, sep.pointwise.weight)
    torch.testing.assert_close(sep(x), expected)
    assert sep(x).shape == nn.Conv2d(cin, cout, k, s, k // 2)(x).shape


def test_se_block_matches_torchvision():
    torch.manual_seed(0)
    ours = SqueezeExcitation(32, 8)
    ref = torchvision.ops.SqueezeExcitation(32, 8)
    ref.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(3, 32, 5, 5)
    torch.testing.assert_close(ours(x), ref(x))
    g = ours.scale(x)
    assert g.shape == (3, 32, 1, 1) and (g > 0).all() and (g < 1).all()


def test_inverted_residual_shortcut():
    assert InvertedResidual(16, 16, 1, 6).use_res_connect
    assert not InvertedResidual(16, 24, 1, 6).use_res_connect
    assert not InvertedResidual(16, 16, 2, 6).use_res_connect
    with pytest.raises(ValueError, match="stride"):
        InvertedResidual(16, 16, 3, 6)


def test_compound_scaling_grows():
    n0, n1 = count_parameters(efficientnet(phi=0)), count_parameters(efficientnet(phi=1))
    assert n0 == 5_288_548 and n1 > n0
