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
    factories = [m["factory"] for m in r["models"].values()]
    assert factories[:4] == ["simple_cnn", "lenet5", "alexnet_mini", "vgg_mini"], factories
    for label, m in r["models"].items():
        assert len(m["test_acc"]) == len(r["seeds"]) == 1, label
        assert all(0.0 <= a <= 1.0 for a in m["test_acc"]) and m["params"] > 0 and m["macs"] > 0, (label, m)
        assert len(m["val_acc_curves"][0]) == r["epochs"] == 1, label
    assert r["models"]["LeNet-5"]["macs"] == 416_520, "LeNet-5 on 28x28: 117,600 + 240,000 + 58,920 MACs"


@pytest.mark.slow
def test_experiment_classic_training_quick():
    from convnets.experiments.classic_training import TEST_SCALES, run

    r = run(quick=True)
    assert set(r["momentum"]) == {"SGD, lr 0.01", "SGD + momentum 0.9, lr 0.01", "SGD, lr 0.1"}
    for arm in r["jitter"].values():
        assert set(arm["test_acc"]) == {str(s) for s in TEST_SCALES}
        assert all(0.0 <= a[0] <= 1.0 for a in arm["test_acc"].values())


def test_rescale_zooms_about_the_centre():
    from convnets.experiments.classic_training import rescale

    X = torch.zeros(1, 1, 28, 28)
    X[0, 0, 10:18, 10:18] = 1.0  # an 8x8 square in the middle
    assert torch.allclose(rescale(X, 1.0), X, atol=1e-5), "factor 1 leaves the image unchanged"
    half = rescale(X, 0.5)
    assert abs(float(half.sum()) - 16.0) < 1.5, "factor 0.5 shrinks the square's area four-fold (64 -> 16)"
    assert float(half[0, 0, :12].sum() + half[0, 0, 16:].sum()) < 1.0, "and keeps it centred"


# ---------------------------------------------------------------------------------------------
# Network in Network: 1x1 convolutions and global average pooling

def test_one_by_one_conv_is_a_linear_layer_at_every_pixel():
    from convnets.models.nin import mlpconv

    torch.manual_seed(0)
    conv = nn.Conv2d(5, 3, 1)
    lin = nn.Linear(5, 3)
    with torch.no_grad():
        lin.weight.copy_(conv.weight[:, :, 0, 0])
        lin.bias.copy_(conv.bias)
    x = torch.randn(2, 5, 6, 7)
    torch.testing.assert_close(conv(x), lin(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2),
                               msg="a 1x1 convolution applies one linear map to the channels of each pixel")
    block = mlpconv(3, (8, 6, 4), kernel_size=3, padding=1)
    kernels = [m.kernel_size for m in block if isinstance(m, nn.Conv2d)]
    assert kernels == [(3, 3), (1, 1), (1, 1)], "mlpconv: a k x k convolution, then 1x1 convolutions"
    assert block(torch.randn(1, 3, 9, 9)).shape == (1, 4, 9, 9)


def test_nin_head_is_global_average_pooling_without_fc():
    from convnets.models import nin_mini

    torch.manual_seed(0)
    net = nin_mini(num_classes=10).eval()
    assert not any(isinstance(m, nn.Linear) for m in net.modules()), "NiN has no fully connected layer"
    by_hand = sum(cout * (cin * k * k + 1) for cin, cout, k in [
        (1, 32, 5), (32, 32, 1), (32, 32, 1), (32, 64, 5), (64, 64, 1), (64, 64, 1), (64, 64, 3), (64, 64, 1),
        (64, 10, 1)])
    assert count_parameters(net) == by_hand, "nin_mini's parameters, layer by layer"
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        f = net.forward_features(x)
        maps = net.classifier(f)
        assert maps.shape == (3, 10, 7, 7), "one 7x7 map per class"
        torch.testing.assert_close(net(x), maps.mean((2, 3)), msg="score = the average of the class map")
        # averaging then a linear layer with the same weights gives the same scores (both linear)
        lin = nn.Linear(64, 10)
        lin.weight.copy_(net.classifier.weight[:, :, 0, 0])
        lin.bias.copy_(net.classifier.bias)
        torch.testing.assert_close(net(x), lin(f.mean((2, 3))), msg="1x1 conv + GAP = GAP + linear")
        assert net(torch.randn(1, 1, 40, 36)).shape == (1, 10), "global pooling takes any image size"


@pytest.mark.slow
def test_experiment_classic_relu_tanh_quick():
    from convnets.experiments.classic_relu_tanh import epochs_to, run

    r = run(quick=True)
    assert set(r["train_error"]) == {"relu", "tanh"}
    assert all(len(c) == r["epochs"] for c in r["train_error"]["relu"])
    assert epochs_to([0.5, 0.2, 0.04], 0.05) == 3 and epochs_to([0.5], 0.1) is None


# ---------------------------------------------------------------------------------------------
# dropout in a wide fully connected network, and the recipe trained to convergence

def test_wide_head_has_dropout_after_each_hidden_layer_and_inverted_scaling():
    from convnets.experiments.classic_dropout import wide_head

    net = wide_head(0.5, width=64)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Flatten", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"], kinds
    assert [type(m).__name__ for m in wide_head(0.0, width=64)] == ["Flatten", "Linear", "ReLU", "Linear",
                                                                    "ReLU", "Linear"], "p=0: no dropout layer"
    assert count_parameters(net) == 64 * 785 + 64 * 65 + 10 * 65, "784 -> 64 -> 64 -> 10 with biases"
    drop = net[3]
    torch.manual_seed(0)
    h = torch.ones(200_000)
    out = drop.train()(h)
    kept = out[out != 0]
    assert torch.allclose(kept, torch.full_like(kept, 2.0)), "inverted dropout: kept units divided by 1 - p"
    assert abs(float((out == 0).float().mean()) - 0.5) < 0.01, "about half the units dropped at p = 0.5"
    assert torch.equal(drop.eval()(h), h), "eval mode: the identity"


def test_stepwise_schedule_follows_one_cycle_step_by_step():
    from convnets.experiments.classic_converged import StepwiseSchedule

    w = nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([w], lr=0.1)
    ref_opt = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=0.1)
    total = 12
    wrapped = StepwiseSchedule(opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=total))
    ref = torch.optim.lr_scheduler.OneCycleLR(ref_opt, max_lr=0.1, total_steps=total)
    for step in range(total):
        assert abs(wrapped.param_groups[0]["lr"] - ref.get_last_lr()[0]) < 1e-12, f"step {step}"
        w.grad = torch.ones(1)
        wrapped.step()
        wrapped.zero_grad()
        ref_opt.step()
        if step + 1 < total:
            ref.step()
    assert w.grad is None, "zero_grad reaches the wrapped optimizer"


@pytest.mark.slow
def test_experiment_classic_dropout_quick():
    from convnets.experiments.classic_dropout import run

    r = run(quick=True)
    assert set(r["arms"]) == {"no dropout", "dropout 0.5"}
    for arm in r["arms"].values():
        assert len(arm["train_acc"]) == len(r["seeds"]) == 1
        assert abs(arm["gap"][0] - (arm["train_acc"][0] - arm["test_acc"][0])) < 1e-12, "gap = train - test"
        assert len(arm["test_curve"][0]) == r["epochs"] == 2


@pytest.mark.slow
def test_experiment_classic_converged_quick():
    from convnets.experiments.classic_converged import MODELS, run

    r = run(quick=True)
    assert list(r["models"]) == [m[0] for m in MODELS]
    for label, m in r["models"].items():
        assert len(m["test_acc"]) == 1 and 0.0 <= m["test_acc"][0] <= 1.0, label
        assert m["epochs"] == 1 and m["cpu_s"][0] > 0, label
    assert r["models"]["LeNet-5"]["params"] == 61_706
    longer = r["longer"]
    assert longer["label"] == "LeNet-5" and longer["epochs"] == 2 == len(longer["val_acc_curves"][0])
