"""Tests of convnets.augment against torchvision's own transforms and independent references."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from convnets import augment as A


def batch(n=16, c=3, h=12, w=10, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_random_crop_matches_torchvision_pad_then_crop():
    X, p = batch(), 3
    out = A.random_crop(X, p, torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    top = torch.randint(0, 2 * p + 1, (len(X),), generator=g)
    left = torch.randint(0, 2 * p + 1, (len(X),), generator=g)
    ref = torch.stack([TF.crop(TF.pad(X[i], [p]), int(top[i]), int(left[i]), 12, 10) for i in range(len(X))])
    assert out.shape == X.shape and out.dtype == X.dtype
    torch.testing.assert_close(out, ref)


def test_random_hflip_rate_and_content():
    X = batch(n=4000, c=1, h=2, w=3)
    out = A.random_hflip(X, 0.3, torch.Generator().manual_seed(0))
    flipped = (out == X.flip(-1)).flatten(1).all(1) & ~(out == X).flatten(1).all(1)
    kept = (out == X).flatten(1).all(1)
    assert bool((flipped | kept).all())
    assert abs(flipped.float().mean().item() - 0.3) < 0.03
    torch.testing.assert_close(A.random_hflip(X, 0.0), X)
    torch.testing.assert_close(A.random_hflip(X, 1.0), X.flip(-1))


def test_cutout_box_and_clipping():
    X = torch.ones(64, 2, 9, 9)
    size = 4
    out = A.cutout(X, size, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    cy, cx = torch.randint(0, 9, (64,), generator=g), torch.randint(0, 9, (64,), generator=g)
    for i in range(64):
        ref = torch.ones(2, 9, 9)
        y0, x0 = max(int(cy[i]) - 2, 0), max(int(cx[i]) - 2, 0)
        ref[:, y0:min(int(cy[i]) - 2 + size, 9), x0:min(int(cx[i]) - 2 + size, 9)] = 0
        torch.testing.assert_close(out[i], ref)


def test_random_affine_integer_shift_is_exact():
    X = batch(n=3, c=1, h=8, w=8)
    # with no rotation/zoom and translate 0, the output is the input (bilinear at pixel centres)
    torch.testing.assert_close(A.random_affine(X, 0.0, 0.0, (1.0, 1.0)), X, atol=1e-6, rtol=0)
    out = A.random_affine(X, 30.0, 0.2, (0.8, 1.2), torch.Generator().manual_seed(0))
    assert out.shape == X.shape and torch.isfinite(out).all()


def test_mixup_and_cutmix_targets_are_distributions():
    X, y = batch(n=32), torch.arange(32) % 10
    for f in (A.mixup, A.cutmix):
        Xo, Y = f(X, y, 10, generator=torch.Generator().manual_seed(0))
        assert Xo.shape == X.shape and Y.shape == (32, 10) and Y.dtype == torch.float32
        torch.testing.assert_close(Y.sum(1), torch.ones(32))
    # CrossEntropyLoss accepts the soft targets
    torch.nn.CrossEntropyLoss()(torch.randn(32, 10), Y)


def test_batch_augment_passes_labels_and_is_reproducible():
    aug = A.digits_batch_augment(cutout_size=4, seed=3)
    X, y = batch(c=1, h=28, w=28), torch.arange(16)
    X1, y1 = aug(X, y)
    assert y1 is y
    X2 = aug.reset()(X)
    torch.testing.assert_close(X1, X2)


def test_views_match_torchvision_five_and_ten_crop():
    x = batch(n=2, h=32, w=30)
    ours = [v(x) for v in A.ten_crop_views(24)]
    ref = TF.ten_crop(x, [24, 24])
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)
    d = batch(n=2, c=1, h=28, w=28)
    shifted = [v(d) for v in A.five_crop_views(28, padding=2)]
    torch.testing.assert_close(shifted[4], d)  # the centre crop of the padded image is the image
    torch.testing.assert_close(shifted[0], F.pad(d, (2, 2, 2, 2))[..., :28, :28])  # moved 2 px down-right


def test_tta_identity_equals_plain_prediction_and_averages():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 12 * 10, 5))
    X = batch(n=7)
    plain = torch.softmax(net(X), 1).detach()
    torch.testing.assert_close(A.tta_predict(net, X), plain)
    torch.testing.assert_close(A.tta_predict(net, X, [A.identity_view]), plain)
    both = A.tta_predict(net, X, A.flip_views(), batch_size=3)
    torch.testing.assert_close(both, (plain + torch.softmax(net(X.flip(-1)), 1).detach()) / 2)
    rand = A.tta_predict(net, X, A.BatchAugment([lambda Z, g: A.random_hflip(Z, 0.5, g)]), n=4)
    assert rand.shape == (7, 5)
    torch.testing.assert_close(rand.sum(1), torch.ones(7))


def test_pipelines_and_gallery_keep_shapes():
    torch.manual_seed(0)
    d = torch.rand(1, 28, 28)
    p = torch.rand(3, 40, 50)
    assert A.get_pipeline("digits")(d).shape == d.shape
    assert A.get_pipeline("photos", size=32)(p).shape == (3, 32, 32)
    for tf in A.gallery_transforms("digits").values():
        assert tf(d).shape == d.shape


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="batch"):
        A.random_crop(torch.rand(3, 8, 8), 2)
    with pytest.raises(TypeError, match="floating"):
        A.cutout(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), 2)
    with pytest.raises(ValueError, match="probability"):
        A.random_hflip(torch.rand(2, 1, 8, 8), 1.5)
    with pytest.raises(ValueError, match="unknown pipeline"):
        A.get_pipeline("audio")
    with pytest.raises(ValueError, match="n"):
        A.tta_predict(torch.nn.Identity(), torch.rand(2, 1, 4, 4), A.digits_batch_augment())


@pytest.mark.gpu
def test_batch_ops_same_numbers_on_cuda():
    X = batch(c=1, h=28, w=28)
    for f in (lambda Z, g: A.random_crop(Z, 2, g), lambda Z, g: A.random_hflip(Z, 0.5, g),
              lambda Z, g: A.cutout(Z, 6, g)):
        cpu = f(X, torch.Generator().manual_seed(0))
        gpu = f(X.cuda(), torch.Generator().manual_seed(0))
        assert gpu.is_cuda
        torch.testing.assert_close(gpu.cpu(), cpu)


@pytest.mark.slow
def test_experiment_quick_runs():
    from convnets.experiments import augmentation

    r = augmentation.run(quick=True)
    assert {x["arm"] for x in r["runs"]} == {"none", "augmented", "wrong"}
    for x in r["runs"]:
        assert 0.0 <= x["test_acc"] <= 1.0 and len(x["confusion"]) == 10


@pytest.mark.parametrize("n_views,kw", [(1, {"transforms": None}),
                                        (5, {"transforms": A.five_crop_views(12, padding=2)}),
                                        (10, {"transforms": A.ten_crop_views(12, padding=2)}),
                                        (8, {"transforms": A.digits_batch_augment(seed=0), "n": 8})])
def test_tta_costs_one_forward_pass_per_view(n_views, kw):
    """The chapter's cost statement, counted: n views send n times the images through the model
    (a forward hook counts them), and the result is the mean of the views' softmax outputs."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(144, 10))
    X = torch.rand(30, 1, 12, 12)
    seen = []
    h = net.register_forward_hook(lambda m, i, o: seen.append(len(i[0])))
    try:
        P = A.tta_predict(net, X, batch_size=7, **kw)
    finally:
        h.remove()
    assert sum(seen) == n_views * len(X)
    torch.testing.assert_close(P.sum(1), torch.ones(len(X)))


def test_experiment_merge_adds_seeds():
    from convnets.experiments import augmentation

    old = {"runs": [{"seed": 0, "n": 100}], "seeds": [0], "torch": "2.0"}
    new = {"runs": [{"seed": 2, "n": 100, "torch": "2.1"}], "seeds": [2], "torch": "2.1"}
    m = augmentation.merge(old, new)
    assert m["seeds"] == [0, 2] and [r["seed"] for r in m["runs"]] == [0, 2]
    assert [r["torch"] for r in m["runs"]] == ["2.0", "2.1"] and m["torch"] == ["2.0", "2.1"]


def test_tta_experiment_counts_views_and_scores_like_a_plain_forward():
    """experiments.augmentation_tta (quick: 50 test images): every scheme costs its number of
    views in forward passes, and the one-view scheme's per-image scores are those of a plain
    forward pass of the same network."""
    from convnets.data import mnist5k
    from convnets.experiments import augmentation_tta as T

    r = T.run(quick=True)
    views = {T.PLAIN: 1, T.SHIFT5: 5, T.AFFINE8: 8, T.AFFINE16: 16, T.TEN: 10}
    assert r["schemes"] == list(T.TTA_NAMES) and r["n_test"] == 50
    for name, n in views.items():
        for arm in T.ARMS:
            assert r["passes"][name][arm] == n
            assert len(r["correct"][name][arm]) == 50 and set(r["correct"][name][arm]) <= {0, 1}
    try:
        nets = T.load_nets()
    except T.MissingCheckpoint:
        pytest.skip("no saved networks of the experiment augmentation")
    d = mnist5k()
    X, y = d.X_test[:50], d.y_test[:50]
    for arm, net in nets.items():
        with torch.no_grad():
            direct = (net(X).argmax(1) == y).int().tolist()
        assert r["correct"][T.PLAIN][arm] == direct
