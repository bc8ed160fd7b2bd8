"""convnets.receptive's layer-by-layer table against two independent references: the input
pixels whose gradient reaches one output unit, and the traced receptive_field (which follows
the graph); the traced one is the one convnets.interpret re-exports."""
import pytest
import torch
from torch import nn

from convnets.models import alexnet, lenet5
from convnets.models.vgg import VGG_CONFIGS, make_layers
from convnets.receptive import as_records, layer_windows, receptive_field_size, receptive_field_table


def gradient_extent(net: nn.Module, size: int) -> tuple[int, int]:
    """(first, last) input column with a non-zero gradient from the centre output unit."""
    for m in net.modules():  # positive weights so no path cancels; average pools route everywhere
        if isinstance(m, nn.Conv2d):
            nn.init.constant_(m.weight, 1.0)
            nn.init.zeros_(m.bias) if m.bias is not None else None
    x = torch.ones(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    y = net.double()(x)
    c = y.shape[-1] // 2
    y[0, 0, c, c].backward()
    cols = torch.nonzero(x.grad[0, 0].abs().sum(0)).flatten()
    return int(cols.min()), int(cols.max())


@pytest.mark.parametrize("specs", [
    [(3, 1, 1), (3, 1, 1)],
    [(5, 1, 2)],
    [(3, 1, 1), (2, 2, 0), (3, 1, 1), (3, 2, 1), (3, 1, 2, 2)],
    [(7, 2, 3), (3, 2, 1), (3, 1, 1)],
])
def test_against_gradient(specs):
    layers = []
    for k, s, p, *d in specs:
        if k == 2:
            layers.append(nn.AvgPool2d(k, s, p))
        else:
            layers.append(nn.Conv2d(1, 1, k, s, p, dilation=d[0] if d else 1))
    net = nn.Sequential(*layers)
    first, last = gradient_extent(net, 64)
    assert receptive_field_size(net) == last - first + 1, f"{specs}: window size differs from the gradient's extent"
    assert receptive_field_size(specs) == receptive_field_size(net), "tuples and modules must agree"


def test_textbook_values():
    assert [r.size for r in receptive_field_table([(3, 1, 1)] * 3)] == [3, 5, 7], "n stacked 3x3: 2n + 1"
    t = receptive_field_table([(3, 1, 1), (2, 2), (3, 1, 1)])
    assert (t[-1].size, t[-1].jump, t[-1].start) == (8, 2, -3), "conv p1, pool 2, conv p1: start -1 - 1 * 2"
    assert receptive_field_size([]) == 1


@pytest.mark.parametrize("name", ["A", "C", "E", "alexnet", "lenet5"])
def test_against_interpret(name):
    from convnets.receptive import receptive_field as traced

    if name == "alexnet":
        features, size = alexnet().features, (1, 3, 224, 224)
    elif name == "lenet5":
        features, size = lenet5().features, (1, 1, 32, 32)
    else:
        features, size = make_layers(VGG_CONFIGS[name]), (1, 3, 224, 224)
    rf = traced(features, input_size=size)
    row = receptive_field_table(features)[-1]
    assert rf.size == (row.size, row.size), f"{name}: traced size {rf.size} vs table {row.size}"
    assert rf.stride == (row.jump, row.jump), f"{name}: traced stride {rf.stride} vs table {row.jump}"
    assert rf.start == (row.start, row.start), f"{name}: traced start {rf.start} vs table {row.start}"


def test_vgg_d_is_212():
    # the last max-pool of VGG-16 sees 212 pixels: 13 3x3 convolutions and 5 2x2 pools
    assert receptive_field_size(make_layers(VGG_CONFIGS["D"])) == 212


def test_stops_at_global_layer_and_records():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    assert [w[0] for w in layer_windows(net)] == ["0"]
    assert as_records(receptive_field_table(net))[0]["size"] == 3


def test_bad_input():
    with pytest.raises(TypeError, match="kernel, stride"):
        receptive_field_size([(3,)])
    with pytest.raises(ValueError, match="square"):
        receptive_field_size(nn.Conv2d(1, 1, (3, 5)))


def test_interpret_reexports_the_tracer():
    import convnets.interpret as I
    import convnets.receptive as R

    assert I.receptive_field is R.receptive_field and I.ReceptiveField is R.ReceptiveField
    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3))
    assert R.receptive_field(net).size == (8, 8)
    assert receptive_field_size(net) == 8, "the chain's int and the traced window agree"
