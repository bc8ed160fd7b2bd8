"""The contract every registered model keeps (convnets.models.list_models()): keyword-only factory
with num_classes and in_channels, a registered input size, output shape, no NaN, a gradient for
every parameter, the timm-style hooks, and a graph torch.fx can trace
(torchvision.models.feature_extraction), input check included.

The ImageNet-width models with the largest classifiers or the most layers run with the slow tests
(``pytest -m slow``); each family keeps at least one model in the fast loop (vgg_mini for VGG,
alexnet_mini, googlenet_mini, resnet18)."""
import inspect
import math

import pytest
import torch
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

from convnets.models import ConvNet, create_model, list_models, model_input_size

_HEAVY = {"vgg", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "alexnet",
          "googlenet", "resnet34", "resnet50", "resnet101", "resnet152"}
MODELS = [pytest.param(m, marks=pytest.mark.slow) if m in _HEAVY else m for m in list_models()]
NUM_CLASSES = 5


def _build(name: str) -> tuple[nn.Module, torch.Tensor]:
    size = model_input_size(name, smallest=True)
    assert size is not None, (f"{name}: register its input size, "
                              "@register_model(input_size=(C, H, W), min_input_size=(C, h, w))")
    torch.manual_seed(0)
    model = create_model(name, num_classes=NUM_CLASSES)
    return model, torch.randn(2, *size)


@pytest.mark.parametrize("name", MODELS)
def test_factory_conventions(name):
    from convnets.models._base import _REGISTRY

    sig = inspect.signature(_REGISTRY[name])
    params = sig.parameters
    positional = [p.name for p in params.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    assert not positional, f"{name}: factories take keyword arguments only; positional: {positional}"
    for arg in ("num_classes", "in_channels"):
        assert arg in params, f"{name}: every factory takes {arg}"
    size, small = model_input_size(name), model_input_size(name, smallest=True)
    assert size is not None and small is not None, f"{name}: no registered input size"
    assert all(s <= t for s, t in zip(small, size)), f"{name}: min_input_size {small} exceeds input_size {size}"
    with torch.device("meta"):
        model = create_model(name, in_channels=size[0] + 1)
    assert isinstance(model, ConvNet), f"{name}: models derive from convnets.models.ConvNet"
    assert model.default_input_size == (size[0] + 1, *size[1:]), \
        f"{name}: default_input_size follows in_channels: {model.default_input_size}"


@pytest.mark.parametrize("name", MODELS)
def test_contract(name):
    model, x = _build(name)
    # train mode: shape, finite, every parameter gets a gradient
    model.train()
    out = model(x)
    for o in (out if isinstance(out, (tuple, list)) else (out,)):  # logits, and auxiliary logits
        assert o.shape == (2, NUM_CLASSES), f"{name}: train-mode output {tuple(o.shape)}"
        assert torch.isfinite(o).all(), f"{name}: non-finite output in train mode"
    loss = sum(o.float().pow(2).mean() for o in (out if isinstance(out, (tuple, list)) else (out,)))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{name}: parameters without a gradient: {missing[:5]}"
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"{name}: non-finite gradients in {bad[:5]}"

    # eval mode: forward = forward_head(forward_features)
    model.eval()
    with torch.no_grad():
        y = model(x)
        feats = model.forward_features(x)
        assert feats.ndim == 4 and feats.shape[0] == 2, f"{name}: forward_features gave {tuple(feats.shape)}"
        torch.testing.assert_close(model.forward_head(feats), y, msg=f"{name}: forward != head(features)")
        pre = model.forward_head(feats, pre_logits=True)
        assert pre.shape == (2, model.num_features), f"{name}: pre-logits {tuple(pre.shape)}"
        clf = model.get_classifier()
        # a 1x1-convolution classifier (Network in Network) is a linear layer on a 1x1 map
        z = clf(pre[:, :, None, None]).flatten(1) if isinstance(clf, nn.Conv2d) else clf(pre)
        torch.testing.assert_close(z, y, msg=f"{name}: the classifier maps the pre-logits to the logits")
        model.reset_classifier(3)
        assert model(x).shape == (2, 3) and model.num_classes == 3
        model.reset_classifier(0)
        torch.testing.assert_close(model(x), pre, msg=f"{name}: reset_classifier(0) gives the pre-logits")


@pytest.mark.filterwarnings("ignore:NOTE. The nodes obtained by tracing the model in eval mode")  # aux heads
@pytest.mark.parametrize("name", MODELS)
def test_fx_feature_extraction(name):
    """torchvision's feature extraction traces the model in train and eval mode; the traced
    graph computes the same logits and keeps the input check."""
    model, x = _build(name)
    model.eval()
    train_nodes, eval_nodes = get_graph_node_names(model)
    assert eval_nodes and train_nodes, f"{name}: torch.fx found no nodes"
    assert any("check_images" in n for n in eval_nodes), f"{name}: the input check is not in the graph"
    middle = eval_nodes[len(eval_nodes) // 2]
    extractor = create_feature_extractor(model, return_nodes={eval_nodes[-1]: "logits", middle: "middle"})
    with torch.no_grad():
        got = extractor(x)
        torch.testing.assert_close(got["logits"], model(x), msg=f"{name}: traced logits differ")
        assert isinstance(got["middle"], torch.Tensor) and got["middle"].shape[0] == 2, f"{name}: {middle}"
        with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
            extractor(x[0])  # one image without its batch dimension


def test_registered_size_is_what_interpret_reads():
    from convnets.receptive import _default_input_size

    for name in ("lenet5", "resnet18", "xception", "simple_cnn"):
        with torch.device("meta"):
            m = create_model(name)
        assert _default_input_size(m) == (1, *model_input_size(name)), name
    with torch.device("meta"):
        m = create_model("lenet5", image_size=28, in_channels=3)
    assert m.default_input_size == (3, 28, 28)
    assert math.prod(m.default_input_size) == 3 * 28 * 28
