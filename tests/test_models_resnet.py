"""ResNet (ImageNet and CIFAR styles) against torchvision and the paper's Table 6."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from convnets.models import create_model, plain_cifar, resnet_cifar
from convnets.models import resnet as R
from convnets.models.resnet_cifar import ZeroPadShortcut
from convnets.utils import count_parameters

TV_COUNTS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
             "resnet101": 44_549_160, "resnet152": 60_192_808}


@pytest.mark.parametrize("name", [n if n in ("resnet18", "resnet34", "resnet50") else
                                  pytest.param(n, marks=pytest.mark.slow) for n in TV_COUNTS])
def test_torchvision_state_dict_loads_and_outputs_match(name):
    torch.manual_seed(0)
    ref = getattr(torchvision.models, name)(weights=None).eval()
    # random BN statistics, so that eval mode is not a no-op
    for m in ref.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    ours = getattr(R, name)().eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert count_parameters(ours) == TV_COUNTS[name]
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


def test_resnet_hooks_and_any_input_size():
    net = R.resnet18(num_classes=7, in_channels=1).eval()
    for size in (32, 57):
        f = net.forward_features(torch.randn(1, 1, size, size))
        assert f.shape[:2] == (1, 512)
        assert net.forward_head(f).shape == (1, 7)
        assert net.forward_head(f, pre_logits=True).shape == (1, 512)
    net.reset_classifier(3)
    assert net(torch.randn(2, 1, 32, 32)).shape == (2, 3)
    net.reset_classifier(0)
    assert net(torch.randn(2, 1, 32, 32)).shape == (2, 512)


def test_stride_in_1x1_keeps_parameters():
    a, b = R.resnet50(), R.resnet50(stride_in_1x1=True)
    assert count_parameters(a) == count_parameters(b)
    assert b.layer2[0].conv1.stride == (2, 2) and b.layer2[0].conv2.stride == (1, 1)
    assert a.layer2[0].conv1.stride == (1, 1) and a.layer2[0].conv2.stride == (2, 2)


def test_zero_init_residual_makes_blocks_identity():
    torch.manual_seed(0)
    block = R.BasicBlock(8, 8)
    nn.init.zeros_(block.bn2.weight)
    nn.init.zeros_(block.bn2.bias)
    x = torch.randn(2, 8, 5, 5).relu()
    torch.testing.assert_close(block(x), x)
    net = R.resnet50(zero_init_residual=True)
    assert all(float(b.bn3.weight.detach().abs().sum()) == 0 for b in net.layer1)


def test_bad_input_messages():
    with pytest.raises(ValueError, match="four positive"):
        R.ResNet(R.BasicBlock, [2, 2, 2])
    with pytest.raises(TypeError, match="BasicBlock or Bottleneck"):
        R.ResNet(nn.Conv2d, [2, 2, 2, 2])
    with pytest.raises(ValueError, match="6n \\+ 2"):
        resnet_cifar(depth=21)
    with pytest.raises(ValueError, match="shortcut"):
        resnet_cifar(depth=20, shortcut="C")
    with pytest.raises(ValueError, match="N, C, H, W"):
        resnet_cifar(depth=8)(torch.randn(1, 28, 28))


# paper Table 6 (CIFAR-10, 3 input channels): 0.27M, 0.46M, 0.66M, 0.85M, 1.7M
@pytest.mark.parametrize("depth,paper_m,exact", [(20, 0.27, 269_722), (32, 0.46, 464_154), (44, 0.66, 658_586),
                                                  (56, 0.85, 853_018), (110, 1.7, 1_727_962)])
def test_cifar_counts_match_table6(depth, paper_m, exact):
    n = count_parameters(resnet_cifar(depth=depth, in_channels=3))
    assert n == exact
    assert round(n / 1e6, 2 if depth < 110 else 1) == paper_m
    # plain = residual with option A: the shortcuts add nothing
    assert count_parameters(plain_cifar(depth=depth, in_channels=3)) == n
    # option B: two projections 16->32 and 32->64 with BN
    assert count_parameters(resnet_cifar(depth=depth, in_channels=3, shortcut="B")) == n + 16 * 32 + 64 + 32 * 64 + 128


def test_cifar_layer_count_is_depth():
    for depth in (8, 20, 56):
        net = plain_cifar(depth=depth)
        weighted = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        assert len(weighted) == depth


def test_cifar_stage_names_for_per_stage_learning_rates():
    net = resnet_cifar(depth=20, in_channels=1, num_classes=10, width=16)
    top = {name.split(".")[0] for name, _ in net.named_parameters()}
    assert top == {"conv1", "bn1", "layer1", "layer2", "layer3", "fc"}
    assert net.get_classifier() is net.fc and net.fc.in_features == 64


@pytest.mark.parametrize("factory", [resnet_cifar, plain_cifar])
@pytest.mark.parametrize("size", [28, 32, 56])
def test_cifar_shapes_and_gradients(factory, size):
    torch.manual_seed(0)
    net = factory(depth=8, in_channels=1, num_classes=10, width=4)
    x = torch.randn(3, 1, size, size, requires_grad=True)
    f = net.forward_features(x)
    assert f.shape == (3, 16, -(-size // 4), -(-size // 4))
    out = net.forward_head(f)
    assert out.shape == (3, 10) and out.dtype == torch.float32 and torch.isfinite(out).all()
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in net.parameters())


def test_zero_pad_shortcut():
    x = torch.randn(2, 4, 6, 6)
    y = ZeroPadShortcut(4, 8, 2)(x)
    assert y.shape == (2, 8, 3, 3)
    torch.testing.assert_close(y[:, :4], x[:, :, ::2, ::2])
    assert y[:, 4:].abs().sum() == 0


def test_registry():
    net = create_model("resnet_cifar", depth=14, width=8)
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    net.reset_classifier(5)
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 5)


@pytest.mark.slow
def test_degradation_experiment_quick():
    from convnets.experiments import degradation, degradation_nowarmup

    r = degradation.run(quick=True)
    assert {(s["kind"], s["depth"]) for s in r["summary"]} == {(k, d) for k in ("plain", "residual") for d in (8, 14)}
    for run in r["runs"]:
        h = run["history"]
        assert len(h["epoch"]) == degradation.QUICK_CONFIG["epochs"]
        assert all(0.0 <= a <= 1.0 for a in h["train_acc"] + h["val_acc"])
    # the no-warm-up variant differs from the main experiment only where it says
    diff = {k for k in degradation.CONFIG if degradation.CONFIG[k] != degradation_nowarmup.CONFIG[k]}
    assert diff <= {"warmup_epochs", "epochs", "seeds"}
    assert degradation_nowarmup.CONFIG["warmup_epochs"] == 0


def test_warmup_schedule():
    """The experiment's own schedule (degradation.lr_factor, what train_one hands to LambdaLR):
    warm-up at a tenth of the rate, then the full rate, then two divisions by 10."""
    from convnets.experiments.degradation import CONFIG, lr_factor
    from convnets.experiments.degradation_nowarmup import CONFIG as NOWARM

    warm, epochs = CONFIG["warmup_epochs"], CONFIG["epochs"]
    assert warm >= 1, "the main experiment warms up"
    net = nn.Linear(2, 2)
    opt = torch.optim.SGD(net.parameters(), lr=CONFIG["lr"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: lr_factor(e, CONFIG))
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    m1, m2 = (round(f * epochs) for f in CONFIG["milestones"])  # epochs where the rate drops 10x
    expected = [0.1] * warm + [1.0] * (m1 - warm) + [0.1] * (m2 - m1) + [0.01] * (epochs - m2)
    assert lrs == pytest.approx([CONFIG["lr"] * f for f in expected]), f"schedule per epoch: {lrs}"
    assert lrs[:warm] == pytest.approx([CONFIG["lr"] / 10] * warm), "warm-up at lr / 10"
    assert lrs[warm] == pytest.approx(CONFIG["lr"]), "full rate after the warm-up"
    assert lrs[-1] == pytest.approx(CONFIG["lr"] / 100), "two divisions by 10 by the end"
    assert all(a >= b * (1 - 1e-9) for a, b in zip(lrs[warm:], lrs[warm + 1:])), "no increase after the warm-up"
    assert lr_factor(0, NOWARM) == 1.0, "the no-warm-up variant starts at the full rate"
    import inspect

    from convnets.experiments import degradation

    assert "lr_factor(" in inspect.getsource(degradation.train_one), "train_one schedules with lr_factor"
