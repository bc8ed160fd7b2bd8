"""convnets.models.plain: the plain networks of chapters 2 and 3, registered, keyword-only, with the
ConvNet hooks; the old import paths (convnets.init, convnets.experiments.normalization) still work."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from convnets import models
from convnets.models import ConvNet
from convnets.models.plain import PlainDeepCNN, PlainSequential, plain_cnn, plain_deep_cnn, plain_mlp


def test_plain_mlp_is_unregistered_and_takes_flat_vectors():
    assert "plain_mlp" not in models.list_models()  # no convolutional network
    net = plain_mlp(depth=3, width=8, in_features=20)
    assert net(torch.rand(4, 20)).shape == (4, 10) and net(torch.rand(4, 1, 4, 5)).shape == (4, 10)
    with pytest.raises(TypeError):
        plain_mlp(5)  # keyword-only


@pytest.mark.parametrize("name", ["plain_cnn", "plain_deep_cnn"])
def test_registered_keyword_only_convnet(name):
    assert name in models.list_models()
    net = models.create_model(name)
    assert isinstance(net, ConvNet)
    x = torch.rand(3, 1, 28, 28)
    out = net(x)
    assert out.shape == (3, 10)
    feats = net.forward_features(x)
    torch.testing.assert_close(net.forward_head(feats), out)
    assert net.forward_head(feats, pre_logits=True).shape == (3, net.num_features)
    assert isinstance(net.get_classifier(), nn.Linear)
    net.reset_classifier(4)
    assert net(x).shape == (3, 4)
    net.reset_classifier(0)
    assert net(x).shape == (3, net.num_features)
    factory = getattr(models, name)
    with pytest.raises(TypeError):
        factory(5)  # keyword-only


def test_plain_sequential_keeps_names_indexing_and_slicing():
    net = plain_cnn(depth=4, width=3, bias=True)
    assert isinstance(net, nn.Sequential) and isinstance(net, PlainSequential)
    # layer names are what the initialisation chapter's probe prints
    assert [n for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))] == ["0", "2", "4", "8"]
    assert len(net) == 9 and isinstance(net[0], nn.Conv2d) and isinstance(net[-1], nn.Linear)
    x = torch.rand(2, 1, 10, 10)
    # an nn.Sequential built from the same modules is the reference
    ref = nn.Sequential(*list(net))
    torch.testing.assert_close(net(x), ref(x))
    head = net[:6]
    torch.testing.assert_close(head(x), nn.Sequential(*list(net)[:6])(x))
    mlp = plain_mlp(depth=3, width=5, in_features=20)
    assert [n for n, m in mlp.named_modules() if isinstance(m, nn.Linear)] == ["1", "3", "5"]
    assert mlp.forward_features(torch.rand(2, 20)).shape == (2, 5)


def test_old_import_paths_are_the_same_models():
    from convnets import init
    from convnets.experiments import normalization

    assert normalization.PlainDeepCNN is PlainDeepCNN and normalization.plain_deep_cnn is plain_deep_cnn
    # convnets.init keeps the old positional order (released notebooks call it so)
    torch.manual_seed(0)
    a = init.plain_cnn(6, 4, downsample_at=(2, 4))
    torch.manual_seed(0)
    b = plain_cnn(depth=6, width=4, downsample_at=(2, 4))
    assert type(a) is type(b) and str(a) == str(b)
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb
        torch.testing.assert_close(pa, pb)
    assert isinstance(init.plain_mlp(3, 8), PlainSequential)


def test_plain_deep_cnn_structure():
    net = plain_deep_cnn(depth=9, width=4, norm="batch")
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4] * 3 + [8] * 3 + [16] * 3
    assert all(c.bias is None for c in convs)
    assert sum(isinstance(m, nn.MaxPool2d) for m in net.modules()) == 2
    g = plain_deep_cnn(depth=3, width=8, norm="group", groups=4)
    assert [m.num_groups for m in g.modules() if isinstance(m, nn.GroupNorm)] == [4, 4, 4]
    v = plain_deep_cnn(depth=3, width=2, norm="batch", virtual_batch=2)
    assert all(m.virtual_batch == 2 for m in v.modules() if isinstance(m, nn.BatchNorm2d))
    with pytest.raises(ValueError, match="depth"):
        plain_deep_cnn(depth=2)
    with pytest.raises(ValueError, match="image_size"):
        plain_deep_cnn(image_size=30)
