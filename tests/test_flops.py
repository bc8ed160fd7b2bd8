"""convnets.flops against hand-computed counts and REFERENCE.md's GMACs (torchvision models)."""
import pytest
import torch
import torchvision
from torch import nn

from convnets.flops import count_flops, count_macs, macs_by_module


def test_conv_and_linear_by_hand():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 5 * 5, 10))
    conv = 8 * 5 * 5 * 3 * 3 * 3  # output elements x (C_in k k)
    linear = 8 * 5 * 5 * 10
    assert count_macs(net, (3, 5, 5)) == conv + linear
    assert count_flops(net, (3, 5, 5)) == 2 * (conv + linear)
    assert count_macs(net, (4, 3, 5, 5)) == 4 * (conv + linear), "a batch of 4 costs 4 times one image"


def test_tensor_input_and_restores_mode():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Dropout())
    net.train()
    assert count_macs(net, torch.zeros(1, 1, 4, 4)) == 2 * 2 * 2 * 9
    assert net.training, "count_macs must restore train mode"


def test_bad_input_size():
    with pytest.raises(TypeError, match="input_size"):
        count_macs(nn.Linear(2, 2), "224")
    with pytest.raises(TypeError, match="input_size"):
        count_macs(nn.Linear(2, 2), (3, 0, 2))


def test_alexnet_reference_gmacs():
    m = torchvision.models.alexnet(weights=None)
    assert round(count_macs(m, (3, 224, 224)) / 1e9, 3) == 0.714  # REFERENCE.md
    parts = macs_by_module(m, (3, 224, 224), depth=1)
    assert list(parts) == ["", "features", "classifier"]
    assert parts["features"] + parts["classifier"] == parts[""]


def test_resnet18_reference_gmacs():
    m = torchvision.models.resnet18(weights=None)
    assert round(count_macs(m, (3, 224, 224)) / 1e9, 2) == 1.81  # REFERENCE.md
