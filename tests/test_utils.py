"""convnets.utils' shared plumbing and the modules built on it (plots, the TTA crops, the blur,
stochastic depth, the results folder), each against an independent reference: the code it
replaced, torchvision, or a hand computation."""
import math
import os
import stat

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convnets import utils


def test_eval_mode_restores_the_mode_even_on_error():
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    net.train()
    with utils.eval_mode(net) as m:
        assert m is net and not net.training and not net[1].training
    assert net.training and net[1].training
    net.eval()
    with pytest.raises(RuntimeError):
        with utils.eval_mode(net):
            raise RuntimeError("boom")
    assert not net.training, "an eval-mode model stays in eval mode"
    net.train()
    with pytest.raises(RuntimeError):
        with utils.eval_mode(net):
            raise RuntimeError("boom")
    assert net.training


def test_model_device():
    assert utils.model_device(nn.Linear(2, 2)) == torch.device("cpu")
    assert utils.model_device(nn.ReLU()) == torch.device("cpu"), "no parameters: the CPU"
    assert utils.model_device(nn.Linear(2, 2), "cpu") == torch.device("cpu")
    with torch.device("meta"):
        m = nn.Linear(2, 2)
    assert utils.model_device(m).type == "meta"
    bn = nn.BatchNorm2d(2, affine=False).to("meta")  # buffers only
    assert utils.model_device(bn).type == "meta"


def test_split_outputs():
    t = torch.zeros(2, 3)
    assert utils.split_outputs(t)[0] is t and utils.split_outputs(t)[1] == ()
    a, b = torch.ones(2, 3), torch.ones(2, 3)
    main, aux = utils.split_outputs((t, a, b))
    assert main is t and aux == (a, b)
    with pytest.raises(TypeError, match="logits"):
        utils.split_outputs({"logits": t})


def test_iter_batches_tensor_and_loader():
    X = torch.arange(7 * 2 * 2).float().view(7, 1, 2, 2)
    chunks = list(utils.iter_batches(X, 3))
    assert [len(c) for c, _ in chunks] == [3, 3, 1] and all(y is None for _, y in chunks)
    torch.testing.assert_close(torch.cat([c for c, _ in chunks]), X)
    y = torch.arange(7)
    loader = [(X[:4], y[:4]), (X[4:], y[4:])]
    got = list(utils.iter_batches(loader, 3))
    assert [len(c) for c, _ in got] == [4, 3], "a loader's batches are kept as they are"
    torch.testing.assert_close(torch.cat([t for _, t in got]), y)
    assert [t for _, t in utils.iter_batches([X[:2], X[2:]])] == [None, None], "bare image batches"
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        list(utils.iter_batches(torch.zeros(3, 4)))


def test_atomic_write(tmp_path):
    p = tmp_path / "sub" / "a.json"
    utils.atomic_write(p, "one")
    assert p.read_text() == "one" and stat.S_IMODE(p.stat().st_mode) == 0o644
    os.chmod(p, 0o600)
    utils.atomic_write(p, b"two")
    assert p.read_bytes() == b"two" and stat.S_IMODE(p.stat().st_mode) == 0o600, "a replaced file keeps its mode"
    utils.atomic_write(p, lambda tmp: torch.save({"x": 1}, tmp))
    assert torch.load(p)["x"] == 1

    def fail(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        utils.atomic_write(p, fail)
    assert torch.load(p)["x"] == 1, "a failed write leaves the old file"
    assert sorted(q.name for q in p.parent.iterdir()) == ["a.json"], "no temporary file is left"


# ---------------------------------------------------------------------------------------------
# what moved onto torchvision: equal to the code it replaced


def _old_image_grid(images, nrow=None, pad=1, pad_value=1.0):
    n, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    out = torch.full((c, rows * (h + pad) + pad, nrow * (w + pad) + pad), float(pad_value))
    for i in range(n):
        r, q = divmod(i, nrow)
        out[:, pad + r * (h + pad): pad + r * (h + pad) + h, pad + q * (w + pad): pad + q * (w + pad) + w] = images[i]
    return out


@pytest.mark.parametrize("shape, kw", [
    ((7, 1, 5, 6), {}), ((9, 3, 4, 4), {"nrow": 4, "pad": 2, "pad_value": 0.0}), ((1, 1, 3, 3), {}),
    ((2, 3, 3, 3), {"nrow": 5}), ((5, 2, 3, 3), {"pad": 0}), ((12, 4, 2, 2), {"nrow": 3}),
])
def test_image_grid_equals_the_loop_it_replaced(shape, kw):
    from convnets.plots import image_grid

    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(image_grid(x, **kw), _old_image_grid(x, **kw), rtol=0, atol=0)


def test_plot_grid_and_history_draw():
    import matplotlib.pyplot as plt

    from convnets import interpret, plots
    from convnets.train import History

    assert interpret.plot_grid is plots.plot_grid and interpret.image_grid is plots.image_grid
    fig = plots.plot_grid(torch.rand(5, 1, 4, 4), titles=list("abcde"), nrow=3, row_labels=["r1", "r2"])
    assert len(fig.axes) == 6 and fig.axes[0].get_title() == "a"
    h = History()
    h.append(epoch=1, train_loss=1.0, train_acc=0.5, val_loss=float("nan"), val_acc=float("nan"), seconds=1.0, lr=0.1)
    h.append(epoch=2, train_loss=0.5, train_acc=0.7, val_loss=float("nan"), val_acc=float("nan"), seconds=1.0, lr=0.1)
    axes = plots.plot_history(h, label="run")
    assert len(axes[0].lines) == 1, "no validation curve when none was recorded"
    plt.close("all")


def _old_gaussian_blur(x, sigma):
    r = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    g = g / g.sum()
    C = x.shape[1]
    xp = F.pad(x, (r, r, r, r), mode="reflect")
    y = F.conv2d(xp, g.view(1, 1, -1, 1).expand(C, 1, -1, 1).contiguous(), groups=C)
    return F.conv2d(y, g.view(1, 1, 1, -1).expand(C, 1, 1, -1).contiguous(), groups=C)


@pytest.mark.parametrize("shape, sigma", [((2, 1, 28, 28), 1.0), ((2, 3, 32, 32), 0.5), ((1, 1, 28, 28), 2.3)])
def test_gaussian_blur_equals_the_convolution_it_replaced(shape, sigma):
    from convnets.interpret import gaussian_blur

    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(gaussian_blur(x, sigma), _old_gaussian_blur(x, sigma), rtol=1e-5, atol=1e-6)
    assert gaussian_blur(x, 0) is x
    small = gaussian_blur(torch.ones(1, 1, 5, 5), 3.0)  # the kernel is cut to the image
    torch.testing.assert_close(small, torch.ones(1, 1, 5, 5), msg="a cut kernel still sums to 1")


def test_drop_path_equals_the_mask_it_replaced():
    from convnets.models.layers import drop_path

    x = torch.randn(64, 3, 2, 2)
    torch.manual_seed(0)
    got = drop_path(x, 0.3, training=True)
    torch.manual_seed(0)
    keep = torch.empty(64, 1, 1, 1).bernoulli_(0.7)
    torch.testing.assert_close(got, x * keep / 0.7)
    assert drop_path(x, 0.3, training=False) is x


def test_five_crop_on_an_odd_margin_matches_torchvision():
    from torchvision.transforms.v2 import functional as TF

    from convnets.augment import five_crop_views, ten_crop_views

    x = torch.rand(2, 1, 31, 29)  # margins 7 and 5: where rounding the centre matters
    for v, ref in zip(five_crop_views(24), TF.five_crop(x, [24, 24])):
        torch.testing.assert_close(v(x), ref)
    assert [v.__name__ for v in ten_crop_views(24)][4:6] == ["center", "top_left_flipped"]


# ---------------------------------------------------------------------------------------------
# the results folder


def test_results_dir_setting(tmp_path, monkeypatch):
    from convnets import experiments

    monkeypatch.setenv("CONVNETS_RESULTS", str(tmp_path / "r"))
    assert experiments.results_dir() == tmp_path / "r"
    monkeypatch.delenv("CONVNETS_RESULTS")
    here = experiments.results_dir()
    assert here.name == "results" and (here.parent / "pyproject.toml").is_file(), "the checkout's results/"


def test_results_dir_outside_a_checkout_names_the_setting(tmp_path, monkeypatch):
    """The package as a non-editable install puts it: under site-packages, no checkout around."""
    from convnets import experiments

    package = tmp_path / "site-packages" / "convnets"
    (package / "experiments").mkdir(parents=True)
    monkeypatch.setattr(experiments, "__file__", str(package / "experiments" / "__init__.py"))
    monkeypatch.delenv("CONVNETS_RESULTS", raising=False)
    with pytest.raises(FileNotFoundError, match="CONVNETS_RESULTS"):
        experiments.results_dir()
    (package / "results").mkdir()
    assert experiments.results_dir() == package / "results", "the package's shipped results/"
    monkeypatch.setenv("CONVNETS_RESULTS", str(tmp_path / "mine"))
    assert experiments.results_dir() == tmp_path / "mine", "the setting comes first"


def test_experiments_command_line(capsys, tmp_path, monkeypatch):
    from convnets import experiments
    from convnets.experiments.__main__ import main

    assert main(["--list"]) == 0
    assert capsys.readouterr().out.split() == experiments.available()
    with pytest.raises(SystemExit):
        main(["no_such_experiment"])
    package = tmp_path / "site-packages" / "convnets"
    monkeypatch.setattr(experiments, "__file__", str(package / "experiments" / "__init__.py"))
    monkeypatch.delenv("CONVNETS_RESULTS", raising=False)
    assert main([experiments.available()[0]]) == 2, "no results folder: a clear error before any run"
    assert "CONVNETS_RESULTS" in capsys.readouterr().err
