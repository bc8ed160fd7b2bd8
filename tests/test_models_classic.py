"""LeNet, AlexNet, VGG, GoogLeNet: parameter counts against REFERENCE.md and torchvision weight
compatibility (the contract every model keeps is tests/test_models_contract.py)."""
import pytest
import torch
import torchvision
from torch import nn

from convnets.models import GoogLeNet, Inception, VGG_CONFIGS, alexnet, create_model, googlenet, lenet5, vgg
from convnets.utils import count_parameters

def _count_meta(fn, *args, **kwargs):
    with torch.device("meta"):
        return count_parameters(fn(*args, **kwargs))


# ---------------------------------------------------------------------------------------------
# parameter counts: REFERENCE.md, exactly

@pytest.mark.parametrize("config,expected", [
    ("A", 132_863_336), ("A-LRN", 132_863_336), ("B", 133_047_848), ("C", 133_638_952),
    ("D", 138_357_544), ("E", 143_667_240),
])
def test_vgg_table2_counts(config, expected):
    assert _count_meta(vgg, config=config, init_weights=False) == expected, f"VGG {config}: Table 2 count"


def test_other_counts():
    assert count_parameters(lenet5()) == 61_706, "LeNet-5 variant on 1x32x32"
    assert count_parameters(lenet5(image_size=28)) == 61_706, "padding 28 -> 32 adds no parameters"
    assert _count_meta(alexnet) == 61_100_840, "AlexNet, torchvision's single-GPU variant"
    assert _count_meta(googlenet, aux_logits=False) == 6_998_552, "GoogLeNet as published, no aux"
    assert _count_meta(googlenet, aux_logits=True) == 13_378_280, "GoogLeNet as published, with aux"


def test_googlenet_torchvision_deviation_accounts_for_its_count():
    with torch.device("meta"):
        tv = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False)
    ours = _count_meta(googlenet, aux_logits=False, batch_norm=True, branch3_kernel=3, lrn=False)
    assert ours == count_parameters(tv) == 6_624_904, "3x3 branch + BN reproduces torchvision's count"


def test_inception_naive_and_reduced():
    m = Inception(192, 64, 96, 128, 16, 32, 32)  # 3a
    assert m.out_channels == 256
    by_hand = (192 * 64 + 64) + (192 * 96 + 96) + (96 * 9 * 128 + 128) + (192 * 16 + 16) + (16 * 25 * 32 + 32) \
        + (192 * 32 + 32)
    assert count_parameters(m) == by_hand, "3a with reductions, counted by hand"
    naive = Inception(192, 64, 96, 128, 16, 32, 32, reduce=False)
    assert naive.out_channels == 64 + 128 + 32 + 192, "naive: the pool branch passes its input through"
    assert count_parameters(naive) == (192 * 64 + 64) + (192 * 9 * 128 + 128) + (192 * 25 * 32 + 32)
    x = torch.randn(1, 192, 7, 7)
    assert m(x).shape == (1, 256, 7, 7) and naive(x).shape == (1, 416, 7, 7)


# ---------------------------------------------------------------------------------------------
# torchvision's state dicts load strictly, outputs match

TV = ["alexnet", "vgg11", "vgg16_bn"] + [pytest.param(n, marks=pytest.mark.slow)
                                        for n in ("vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg19", "vgg19_bn")]


@pytest.mark.parametrize("name", TV)
def test_torchvision_weights_load_and_match(name):
    torch.manual_seed(0)
    ref = getattr(torchvision.models, name)(weights=None).eval()
    with torch.no_grad():  # non-trivial BN statistics, so eval mode really uses them
        for m in ref.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    with torch.device("meta"):
        ours = create_model(name) if name != "alexnet" else alexnet()
    ours.load_state_dict(ref.state_dict(), strict=True, assign=True)
    ours.eval()
    torch.manual_seed(1)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    assert got.dtype == torch.float32 and got.shape == (2, 1000), f"{name}: logits (2, 1000) float32"
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0, msg=f"{name}: outputs differ from torchvision's")


def test_torchvision_alexnet_matches_at_224():
    torch.manual_seed(0)
    ref = torchvision.models.alexnet(weights=None).eval()
    ours = alexnet().eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=0)
        torch.testing.assert_close(ours.forward_features(x), ref.features(x), atol=1e-5, rtol=0)


def test_lrn_keeps_state_dict_keys():
    a, b = alexnet(lrn=False), alexnet(lrn=True)
    assert a.state_dict().keys() == b.state_dict().keys(), "LRN sits in the ReLU's slot: keys unchanged"


# ---------------------------------------------------------------------------------------------
# every model's shape, gradients and hooks: tests/test_models_contract.py

def test_googlenet_aux_outputs_and_reset():
    net = googlenet(num_classes=5)
    net.train()
    out = net(torch.randn(2, 3, 64, 64))
    assert isinstance(out, tuple) and len(out) == 3, "training mode: (logits, aux1, aux2)"
    net.reset_classifier(4)
    assert all(o.shape == (2, 4) for o in net(torch.randn(2, 3, 64, 64))), "aux heads reset too"
    assert not hasattr(googlenet(aux_logits=False), "aux1")


def test_googlenet_224_shapes():
    net = googlenet(aux_logits=False).eval()
    with torch.no_grad():
        f = net.forward_features(torch.randn(1, 3, 224, 224))
    assert f.shape == (1, 1024, 7, 7), "GoogLeNet at 224: a 7x7x1024 map before the average pool"


def test_vgg_c_and_lrn_forward():
    from convnets.models import VGG

    for cfg in ("A-LRN", "C"):  # Table 1's layers with a narrow classifier, to keep the test cheap
        net = VGG(VGG_CONFIGS[cfg], num_classes=3, hidden=64)
        with torch.no_grad():
            assert net.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 3), f"VGG {cfg}: (1, 3) logits"
    with torch.device("meta"):
        kernels = [m.kernel_size for m in vgg(config="C", init_weights=False).features if isinstance(m, nn.Conv2d)]
    assert kernels.count((1, 1)) == 3, "column C: a 1x1 convolution in each of blocks 3-5"


def test_in_channels_and_bad_input():
    with torch.device("meta"):
        assert vgg(config="A", in_channels=1, init_weights=False).features[0].in_channels == 1
    with pytest.raises(ValueError, match="Table 1"):
        vgg(config="F")
    with pytest.raises(ValueError, match="image_size"):
        lenet5(image_size=64)
    with pytest.raises(ValueError, match="built for"):
        lenet5()(torch.zeros(1, 1, 28, 28))
    with pytest.raises(ValueError, match="branch3_kernel"):
        GoogLeNet(branch3_kernel=7)
    with pytest.raises(ValueError, match="widths"):
        from convnets.models import AlexNet
        AlexNet(widths=(1, 2, 3))


# ---------------------------------------------------------------------------------------------
# the chapter's cached experiments, in their reduced size

@pytest.mark.slow
def test_experiment_classic_mnist_quick():
    from convnets.experiments.classic_mnist import run

    r = run(quick=True)
    assert [row["factory"] for row in r["rows"]] == ["lenet5", "alexnet_mini", "vgg_mini", "googlenet_mini"]
    for row in r["rows"]:
        assert 0.0 <= row["test_acc"] <= 1.0 and row["params"] > 0 and row["macs"] > 0, row


@pytest.mark.slow
def test_experiment_classic_relu_tanh_quick():
    from convnets.experiments.classic_relu_tanh import epochs_to, run

    r = run(quick=True)
    assert set(r["train_error"]) == {"relu", "tanh"}
    assert all(len(c) == r["epochs"] for c in r["train_error"]["relu"])
    assert epochs_to([0.5, 0.2, 0.04], 0.05) == 3 and epochs_to([0.5], 0.1) is None
