"""Chapter 6's models after ResNet: DenseNet against torchvision, the pre-activation ResNet, the
highway layer and the Inception-ResNet block against computations written out in the tests."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from convnets.models import (HighwayBlock, InceptionResNetA, PreActBasicBlock, PreActBottleneck, create_model,
                             densenet121, densenet169, preact_resnet_cifar)
from convnets.models import BasicBlock
from convnets.utils import count_parameters


def _randomise_bn(net: nn.Module, seed: int = 0) -> None:
    """Non-trivial batch-norm statistics and affine parameters, so eval mode tests them."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


# --- DenseNet: torchvision-compatible -------------------------------------------------------

@pytest.mark.parametrize("name, ours", [("densenet121", densenet121), ("densenet169", densenet169)])
def test_densenet_parameter_count_and_names_equal_torchvision(name, ours):
    with torch.device("meta"):
        a, b = ours(), getattr(torchvision.models, name)()
    assert count_parameters(a) == count_parameters(b)
    assert list(a.state_dict()) == list(b.state_dict())
    if name == "densenet121":  # REFERENCE.md: torchvision densenet121 7,978,856 parameters
        assert count_parameters(a) == 7_978_856


@pytest.mark.slow
def test_densenet121_loads_torchvision_weights_and_agrees():
    torch.manual_seed(0)
    ref = torchvision.models.densenet121(num_classes=7)
    _randomise_bn(ref)
    net = densenet121(num_classes=7)
    net.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(x), ref.eval()(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(net.train()(x), ref.train()(x), rtol=1e-4, atol=1e-4)
    # and back: our state_dict loads into torchvision's model
    ref2 = torchvision.models.densenet121(num_classes=7)
    ref2.load_state_dict(net.state_dict(), strict=True)


def test_densenet_small_config_shapes_and_hooks():
    net = create_model("densenet", growth_rate=8, block_config=(2, 2), num_init_features=16,
                       num_classes=5, in_channels=1)
    x = torch.randn(2, 1, 32, 32)
    f = net.forward_features(x)
    # 16 + 2*8 = 32 -> transition 16 -> 16 + 2*8 = 32 channels; 32 / 4 (stem) / 2 (transition)
    assert f.shape == (2, 32, 4, 4)
    assert net(x).shape == (2, 5) and net.forward_head(f, pre_logits=True).shape == (2, 32)
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    with pytest.raises(ValueError, match="block_config"):
        create_model("densenet", block_config=())


# --- pre-activation ResNet ------------------------------------------------------------------

def _preact_basic_reference(b: PreActBasicBlock, x: torch.Tensor) -> torch.Tensor:
    """Eval-mode block written with torch.nn.functional."""
    def bn(m, t):
        return F.batch_norm(t, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)
    a = F.relu(bn(b.bn1, x))
    r = F.conv2d(F.relu(bn(b.bn2, F.conv2d(a, b.conv1.weight, stride=b.conv1.stride, padding=1))),
                 b.conv2.weight, padding=1)
    s = x if b.shortcut is None else F.conv2d(a, b.shortcut.weight, stride=b.shortcut.stride)
    return s + r


@pytest.mark.parametrize("cin, c, stride", [(8, 8, 1), (8, 16, 2), (4, 6, 1)])
def test_preact_basic_block_matches_functional_reference(cin, c, stride):
    torch.manual_seed(0)
    b = PreActBasicBlock(cin, c, stride)
    _randomise_bn(b)
    x = torch.randn(2, cin, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(b.eval()(x), _preact_basic_reference(b, x))


def test_preact_block_with_zero_branch_is_exactly_the_identity_unlike_the_original():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 6, 6)  # negative values too
    pre = PreActBottleneck(32, 8).eval()
    x32 = torch.randn(2, 32, 6, 6)
    with torch.no_grad():
        pre.conv3.weight.zero_()
        torch.testing.assert_close(pre(x32), x32, rtol=0, atol=0)
    orig = BasicBlock(8, 8).eval()
    with torch.no_grad():
        orig.bn2.weight.zero_()
        orig.bn2.bias.zero_()
        y = orig(x)
    torch.testing.assert_close(y, F.relu(x))  # the ReLU after the addition clips the shortcut
    assert not torch.equal(y, x)
    # the gradient through a zeroed pre-activation block is exactly the identity
    xg = x32.clone().requires_grad_(True)
    pre(xg).sum().backward()
    torch.testing.assert_close(xg.grad, torch.ones_like(xg))


def _preact_count(depth: int, in_ch: int = 3, k: int = 10, w: int = 16) -> int:
    """Parameters of a CIFAR pre-activation bottleneck ResNet, counted layer by layer."""
    n = (depth - 2) // 9
    total = 9 * in_ch * w  # stem
    c = w
    for i, ch in enumerate((w, 2 * w, 4 * w)):
        for j in range(n):
            out = 4 * ch
            total += 2 * c + c * ch + 2 * ch + 9 * ch * ch + 2 * ch + ch * out  # bn1 conv1 bn2 conv2 bn3 conv3
            if c != out or (i > 0 and j == 0):
                total += c * out
            c = out
    return total + 2 * c + c * k + k  # final BN, fc


@pytest.mark.parametrize("depth", [11, 29, 164])
def test_preact_resnet_parameter_count(depth):
    with torch.device("meta"):
        net = preact_resnet_cifar(depth=depth, in_channels=3)
    assert count_parameters(net) == _preact_count(depth)


def test_preact_resnet_forward_and_depth_check():
    net = preact_resnet_cifar(depth=20, block="basic", num_classes=10)
    x = torch.randn(2, 1, 28, 28)
    assert net.forward_features(x).shape == (2, 64, 7, 7) and net(x).shape == (2, 10)
    with pytest.raises(ValueError, match="9n \\+ 2"):
        preact_resnet_cifar(depth=21)


# --- highway and Inception-ResNet -----------------------------------------------------------

def test_highway_block_formula_and_gate_limits():
    torch.manual_seed(0)
    blk = HighwayBlock(4)
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        h = F.relu(F.conv2d(x, blk.conv_h.weight, blk.conv_h.bias, padding=1))
        t = torch.sigmoid(F.conv2d(x, blk.conv_t.weight, blk.conv_t.bias, padding=1))
        torch.testing.assert_close(blk(x), h * t + x * (1 - t))
        assert torch.allclose(blk.conv_t.bias, torch.full((4,), -2.0))
        assert blk.gate(x).mean() < 0.5  # starts biased towards carrying x
        blk.conv_t.bias.fill_(-60.0)  # gate shut: the layer carries its input
        torch.testing.assert_close(blk(x), x)
        blk.conv_t.bias.fill_(60.0)  # gate open: a plain layer
        torch.testing.assert_close(blk(x), h)
    assert count_parameters(blk) == 2 * (9 * 16 + 4)


def test_inception_resnet_a_count_formula_and_zero_scale():
    blk = InceptionResNetA()
    convs = 320 * 32 + (320 * 32 + 9 * 32 * 32) + (320 * 32 + 9 * 32 * 48 + 9 * 48 * 64)
    bns = 2 * (32 + 32 + 32 + 32 + 48 + 64)
    assert count_parameters(blk) == convs + bns + 128 * 320 + 320
    torch.manual_seed(0)
    small = InceptionResNetA(8, ((4,), (4, 4), (4, 6, 8)), scale=0.2).eval()
    _randomise_bn(small)
    x = torch.randn(2, 8, 7, 7)
    with torch.no_grad():
        r = small.residual(x)
        assert r.shape == x.shape
        torch.testing.assert_close(small(x), F.relu(x + 0.2 * r))
        small.scale = 0.0
        torch.testing.assert_close(small(x), F.relu(x))
