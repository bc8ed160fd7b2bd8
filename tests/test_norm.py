"""convnets.norm against torch's own modules: outputs, running statistics, gradients, state_dicts."""
from __future__ import annotations

import itertools
import random

import pytest
import torch
from torch import nn

from convnets import norm

TOL = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.float64: dict(atol=1e-10, rtol=1e-10)}


def _bn_pair(cls_ours, cls_torch, C, dtype, **kw):
    ours = cls_ours(C, dtype=dtype, **kw)
    ref = cls_torch(C, dtype=dtype, **kw)
    if ref.affine:  # random gamma, beta: the check must not pass by gamma = 1, beta = 0
        with torch.no_grad():
            ref.weight.uniform_(0.5, 1.5)
            if ref.bias is not None:
                ref.bias.uniform_(-0.5, 0.5)
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def _compare_modules(ours, ref, make_x, dtype, steps=3, case=""):
    """Several training steps then an eval step: outputs, grads (x, gamma, beta), buffers."""
    tol = TOL[dtype]
    for step in range(steps + 1):
        training = step < steps
        ours.train(training)
        ref.train(training)
        x = make_x()
        xa = x.clone().requires_grad_(True)
        xb = x.clone().requires_grad_(True)
        ya, yb = ours(xa), ref(xb)
        torch.testing.assert_close(ya, yb, **tol, msg=lambda m: f"{case} step {step} output: {m}")
        g = torch.randn_like(yb)
        ya.backward(g)
        yb.backward(g)
        torch.testing.assert_close(xa.grad, xb.grad, **tol, msg=lambda m: f"{case} step {step} grad x: {m}")
        for name, p in ref.named_parameters():
            q = dict(ours.named_parameters())[name]
            torch.testing.assert_close(q.grad, p.grad, **tol, msg=lambda m: f"{case} step {step} grad {name}: {m}")
            p.grad = q.grad = None
        for name, b in ref.named_buffers():
            torch.testing.assert_close(dict(ours.named_buffers())[name], b, **tol,
                                       msg=lambda m: f"{case} step {step} buffer {name}: {m}")


def _bn_cases(n_cases: int, seed: int):
    rng = random.Random(seed)
    for i in range(n_cases):
        twod = rng.random() < 0.5
        N = rng.choice([2, 3, 5, 16])
        C = rng.choice([1, 3, 8])
        if twod:
            shape = (N, C, rng.choice([1, 4, 7]), rng.choice([1, 5, 6]))
            pair = (norm.BatchNorm2d, nn.BatchNorm2d)
        else:
            shape = rng.choice([(N, C), (N, C, rng.choice([1, 4, 9]))])
            pair = (norm.BatchNorm1d, nn.BatchNorm1d)
        kw = dict(
            momentum=rng.choice([0.1, 0.5, None, 0.0, 1.0]),
            affine=rng.random() < 0.7,
            track_running_stats=rng.random() < 0.75,
            eps=rng.choice([1e-5, 1e-3]),
        )
        dtype = rng.choice([torch.float32, torch.float64])
        yield i, pair, shape, kw, dtype


@pytest.mark.parametrize("case", list(_bn_cases(60, seed=0)), ids=lambda c: f"bn{c[0]}")
def test_batchnorm_matches_torch(case):
    i, (ours_cls, ref_cls), shape, kw, dtype = case
    torch.manual_seed(i)
    ours, ref = _bn_pair(ours_cls, ref_cls, shape[1], dtype, **kw)
    shift = torch.randn(shape[1], dtype=dtype).reshape((1, -1) + (1,) * (len(shape) - 2)) * 3

    def make_x():
        return torch.randn(shape, dtype=dtype) * 2 + shift

    _compare_modules(ours, ref, make_x, dtype, case=f"{ours_cls.__name__}{shape} {kw} {dtype}")


def test_batchnorm_no_bias_and_running_stats_reset():
    ours, ref = _bn_pair(norm.BatchNorm2d, nn.BatchNorm2d, 4, torch.float64, bias=False)
    assert ours.bias is None and set(ours.state_dict()) == set(ref.state_dict())
    _compare_modules(ours, ref, lambda: torch.randn(3, 4, 5, 5, dtype=torch.float64), torch.float64)
    ours.reset_running_stats()
    assert ours.num_batches_tracked.item() == 0 and torch.all(ours.running_var == 1)


def _ln_cases(n_cases: int, seed: int):
    rng = random.Random(seed)
    for i in range(n_cases):
        k = rng.choice([1, 2, 3])
        norm_shape = tuple(rng.choice([1, 3, 5, 8]) for _ in range(k))
        if norm_shape == (1,) * k:
            norm_shape = (4,) + norm_shape[1:]
        lead = tuple(rng.choice([1, 2, 4]) for _ in range(rng.choice([0, 1, 2])))
        kw = dict(elementwise_affine=rng.random() < 0.7, bias=rng.random() < 0.8, eps=rng.choice([1e-5, 1e-3]))
        yield i, lead + norm_shape, norm_shape, kw, rng.choice([torch.float32, torch.float64])


@pytest.mark.parametrize("case", list(_ln_cases(40, seed=1)), ids=lambda c: f"ln{c[0]}")
def test_layernorm_matches_torch(case):
    i, shape, norm_shape, kw, dtype = case
    torch.manual_seed(100 + i)
    ref = nn.LayerNorm(norm_shape, dtype=dtype, **kw)
    if ref.weight is not None:
        with torch.no_grad():
            ref.weight.uniform_(0.5, 1.5)
            if ref.bias is not None:
                ref.bias.uniform_(-0.5, 0.5)
    ours = norm.LayerNorm(norm_shape, dtype=dtype, **kw)
    ours.load_state_dict(ref.state_dict())
    _compare_modules(ours, ref, lambda: torch.randn(shape, dtype=dtype) * 3 + 1, dtype, steps=1,
                     case=f"LayerNorm{norm_shape} x{shape} {kw} {dtype}")


def test_layernorm_int_shape_and_state_dict_names():
    ref = nn.LayerNorm(6)
    ours = norm.LayerNorm(6)
    assert list(ours.state_dict()) == list(ref.state_dict()) == ["weight", "bias"]
    assert ours.normalized_shape == ref.normalized_shape == (6,)
    x = torch.randn(2, 3, 6)
    torch.testing.assert_close(ours(x), ref(x))


def test_state_dicts_load_both_ways():
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LayerNorm(4 * 4 * 4), nn.Linear(64, 2),
                        nn.BatchNorm1d(2))
    ours = nn.Sequential(nn.Conv2d(1, 4, 3), norm.BatchNorm2d(4), nn.Flatten(), norm.LayerNorm(64), nn.Linear(64, 2),
                         norm.BatchNorm1d(2))
    for _ in range(3):
        ref(torch.randn(8, 1, 6, 6))
    ours.load_state_dict(ref.state_dict())
    ref.eval()
    ours.eval()
    x = torch.randn(5, 1, 6, 6)
    torch.testing.assert_close(ours(x), ref(x))
    # and back: our running statistics into torch's module
    ours.train()
    ours(torch.randn(8, 1, 6, 6) * 2 + 1)
    ref.load_state_dict(ours.state_dict())
    ours.eval(), ref.eval()
    torch.testing.assert_close(ours(x), ref(x))
    assert ref[1].num_batches_tracked.item() == 4


def test_old_state_dict_without_num_batches_tracked_loads():
    ref = nn.BatchNorm2d(3)
    sd = ref.state_dict()
    del sd["num_batches_tracked"]
    sd._metadata = {"": {"version": 1}}  # what a pre-1.0 torch wrote
    ours = norm.BatchNorm2d(3)
    ours.load_state_dict(sd)
    assert ours.num_batches_tracked.item() == 0


def test_eval_uses_running_statistics():
    bn = norm.BatchNorm1d(3, momentum=None)
    xs = [torch.randn(10, 3) * 3 + 2 for _ in range(4)]
    for x in xs:
        bn(x)
    allx = torch.stack(xs)
    # momentum=None: the cumulative average of the batch means and of the unbiased variances
    torch.testing.assert_close(bn.running_mean, allx.mean(1).mean(0))
    torch.testing.assert_close(bn.running_var, allx.var(1, unbiased=True).mean(0))
    bn.eval()
    x = torch.randn(2, 3)
    torch.testing.assert_close(bn(x), (x - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps))


def test_train_without_tracking_uses_batch_stats_in_eval():
    bn = norm.BatchNorm2d(2, track_running_stats=False).eval()
    x = torch.randn(4, 2, 3, 3) + 5
    y = bn(x)
    torch.testing.assert_close(y.mean((0, 2, 3)), torch.zeros(2), atol=1e-5, rtol=0)
    assert bn.running_mean is None and "running_mean" not in bn.state_dict()


@pytest.mark.parametrize("dtype", [torch.float64])
def test_hand_written_backward_matches_autograd(dtype):
    torch.manual_seed(0)
    for shape in [(4, 3), (3, 5, 7), (2, 4, 5, 6)]:
        x = (torch.randn(shape, dtype=dtype) * 2 + 1).requires_grad_(True)
        w = (torch.rand(shape[1], dtype=dtype) + 0.5).requires_grad_(True)
        b = torch.randn(shape[1], dtype=dtype, requires_grad=True)
        g = torch.randn(shape, dtype=dtype)
        ref = nn.functional.batch_norm(x, None, None, w, b, training=True, eps=1e-5)
        want = torch.autograd.grad(ref, (x, w, b), g)
        got = norm.batch_norm_backward(g, x.detach(), w.detach(), 1e-5)
        for name, a, e in zip(("x", "gamma", "beta"), got, want):
            torch.testing.assert_close(a, e, msg=lambda m: f"batch norm {shape} grad {name}: {m}")
        assert torch.autograd.gradcheck(lambda x, w, b: norm.BatchNormFunction.apply(x, w, b, 1e-5), (x, w, b))
        # layer norm over the last two dims (or the last one for 2D input)
        ns = shape[1:] if len(shape) == 2 else shape[-2:]
        wl = (torch.rand(ns, dtype=dtype) + 0.5).requires_grad_(True)
        bl = torch.randn(ns, dtype=dtype, requires_grad=True)
        ref = nn.functional.layer_norm(x, ns, wl, bl, eps=1e-5)
        want = torch.autograd.grad(ref, (x, wl, bl), g)
        got = norm.layer_norm_backward(g, x.detach(), ns, wl.detach(), 1e-5)
        for name, a, e in zip(("x", "gamma", "beta"), got, want):
            torch.testing.assert_close(a, e, msg=lambda m: f"layer norm {shape} grad {name}: {m}")
        assert torch.autograd.gradcheck(lambda x, w, b: norm.LayerNormFunction.apply(x, ns, w, b, 1e-5), (x, wl, bl))


def test_hand_written_backward_without_gamma_float32():
    torch.manual_seed(1)
    x = torch.randn(8, 4, 3, 3, requires_grad=True)
    g = torch.randn(8, 4, 3, 3)
    (want,) = torch.autograd.grad(nn.functional.batch_norm(x, None, None, training=True), x, g)
    got, _, _ = norm.batch_norm_backward(g, x.detach(), None)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_scalar_layer_norm_is_the_slide():
    ln = norm.ScalarLayerNorm((3, 4, 4))
    assert ln.weight.shape == () and sum(p.numel() for p in ln.parameters()) == 2
    assert sum(p.numel() for p in norm.LayerNorm((3, 4, 4)).parameters()) == 2 * 48
    with torch.no_grad():
        ln.weight.fill_(2.0)
        ln.bias.fill_(-1.0)
    x = torch.randn(5, 3, 4, 4)
    ref = 2.0 * nn.functional.layer_norm(x, (3, 4, 4)) - 1.0
    torch.testing.assert_close(ln(x), ref)


def test_low_precision_input_keeps_dtype():
    bn = norm.BatchNorm2d(3)
    x = torch.randn(4, 3, 5, 5).to(torch.bfloat16)
    y = bn(x)
    assert y.dtype == torch.bfloat16 and bn.running_mean.dtype == torch.float32
    torch.testing.assert_close(y.float(), nn.functional.batch_norm(x.float(), None, None, training=True),
                               atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("bad, err, text", [
    (lambda: norm.BatchNorm2d(3)(torch.randn(2, 3, 4)), ValueError, "4D"),
    (lambda: norm.BatchNorm1d(3)(torch.randn(2, 3, 4, 4)), ValueError, "BatchNorm2d"),
    (lambda: norm.BatchNorm2d(3)(torch.randn(2, 4, 5, 5)), ValueError, "channels"),
    (lambda: norm.BatchNorm1d(3)(torch.randn(1, 3)), ValueError, "more than 1 value"),
    (lambda: norm.LayerNorm(5)(torch.randn(2, 4)), ValueError, "normalized_shape"),
    (lambda: norm.BatchNorm2d(0), ValueError, "num_features"),
    (lambda: norm.BatchNorm2d(3, momentum=2.0), ValueError, "momentum"),
    (lambda: norm.LayerNorm("a"), (TypeError, ValueError), "normalized_shape"),
    (lambda: norm.norm_layer("instance", 4), ValueError, "unknown normalization"),
    (lambda: norm.norm_layer("layer", 4), ValueError, "spatial"),
])
def test_bad_input_messages(bad, err, text):
    with pytest.raises(err, match=text):
        bad()


def test_batch_of_one_in_eval_is_fine():
    bn = norm.BatchNorm1d(3).eval()
    assert bn(torch.randn(1, 3)).shape == (1, 3)


def test_norm_layer_factory():
    x = torch.randn(2, 4, 5, 5)
    for kind, impl in itertools.product(["none", "batch", "layer", "layer_scalar"], ["convnets", "torch"]):
        layer = norm.norm_layer(kind, 4, spatial=(5, 5), impl=impl)
        assert layer(x).shape == x.shape, (kind, impl)


@pytest.mark.gpu
def test_cuda_matches_torch():
    ours, ref = _bn_pair(norm.BatchNorm2d, nn.BatchNorm2d, 8, torch.float32)
    ours, ref = ours.cuda(), ref.cuda()
    _compare_modules(ours, ref, lambda: torch.randn(4, 8, 6, 6, device="cuda"), torch.float32)


def test_explorer_records_and_static_form():
    import matplotlib

    matplotlib.use("Agg")
    from convnets.models.plain import plain_deep_cnn
    from convnets.explore import norm as explore

    torch.manual_seed(0)
    net = plain_deep_cnn(depth=3, width=4, norm="batch")
    X = torch.rand(16, 1, 28, 28)
    recs = explore.norm_activations(net, X, train_mode=True)
    assert [r["type"] for r in recs] == ["BatchNorm2d"] * 3
    after = recs[0]["after"]
    # batch statistics: every channel of the output has mean 0 and (biased) std 1; the ReLU that
    # follows in place must not have overwritten the recorded output (it has negative values)
    torch.testing.assert_close(after.mean((0, 2, 3)), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(after.std((0, 2, 3), unbiased=False), torch.ones(4), atol=1e-3, rtol=0)
    assert (after < 0).any()
    assert net.features[1].num_batches_tracked.item() == 0, "train_mode must run on a copy"
    box, nbytes = explore.static_histogram_explorer({"init": (net, True), "eval": net}, X, layers=[1], dpi=30)
    assert len(box.children[1].children) == 2 and nbytes > 0
    live = explore.histogram_explorer({"init": net}, X)
    assert live.children
    explore.plot_norm_axes()
    with pytest.raises(ValueError, match="no normalization layer"):
        explore.norm_activations(nn.Sequential(nn.Conv2d(1, 2, 3)), X)


def test_norm_layer_group_is_torchs_group_norm():
    layer = norm.norm_layer("group", 16, groups=4)
    assert isinstance(layer, nn.GroupNorm) and layer.num_groups == 4 and layer.num_channels == 16
    assert norm.norm_layer("group", 2, groups=4).num_groups == 2  # fewer channels than groups
    x = torch.randn(3, 16, 5, 5)
    g = x.reshape(3, 4, 4 * 25)
    ref = ((g - g.mean(-1, keepdim=True)) / torch.sqrt(g.var(-1, unbiased=False, keepdim=True) + 1e-5)).reshape_as(x)
    torch.testing.assert_close(layer(x), ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="divisible"):
        norm.norm_layer("group", 6, groups=4)


@pytest.mark.parametrize("bias,groups,stride,affine,cls", [
    (False, 1, 1, True, nn.BatchNorm2d), (True, 1, 2, True, nn.BatchNorm2d),
    (False, 2, 1, False, nn.BatchNorm2d), (True, 1, 1, True, norm.BatchNorm2d)])
def test_fold_batchnorm_matches_eval_mode(bias, groups, stride, affine, cls):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, stride=stride, padding=1, groups=groups, bias=bias)
    bn = cls(6, affine=affine)
    if affine:
        with torch.no_grad():
            bn.weight.uniform_(0.5, 2.0), bn.bias.uniform_(-1, 1)
    bn.train()
    for _ in range(5):  # running statistics far from (0, 1)
        bn(conv(torch.randn(8, 4, 9, 9) * 3 + 2))
    bn.eval()
    x = torch.randn(5, 4, 9, 9) * 3 + 2
    with torch.no_grad():
        expected = bn(conv(x))
        fused = norm.fold_batchnorm(conv, bn)
        got = fused(x)
    assert isinstance(fused, nn.Conv2d) and fused.bias is not None and fused.stride == conv.stride
    assert fused.groups == groups and fused is not conv
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # the unfolded pair is untouched, and the fold is wrong for train mode (batch statistics)
    torch.testing.assert_close(bn(conv(x)), expected)
    with torch.no_grad():
        assert (bn.train()(conv(x)) - got).abs().max() > 1e-2


def test_fold_batchnorm_bad_input():
    conv = nn.Conv2d(2, 3, 3)
    with pytest.raises(ValueError, match="channels"):
        norm.fold_batchnorm(conv, nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match="running statistics"):
        norm.fold_batchnorm(conv, nn.BatchNorm2d(3, track_running_stats=False))
    with pytest.raises(TypeError, match="Conv2d"):
        norm.fold_batchnorm(nn.Linear(2, 3), nn.BatchNorm2d(3))


def test_batch_stat_accuracy_is_train_mode_on_a_copy():
    import copy

    from convnets.experiments.normalization import batch_stat_accuracy as reexported

    assert reexported is norm.batch_stat_accuracy
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(3 * 4 * 4, 2)).eval()
    with torch.no_grad():
        net[1].running_mean.fill_(5.0)  # eval mode would be far off
    X, y = torch.randn(12, 1, 6, 6), torch.randint(0, 2, (12,))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    # brute force: torch's BatchNorm2d in train mode on consecutive full batches of a fresh copy
    for b in (4, 5):
        twin = copy.deepcopy(net).train()
        with torch.no_grad():
            hits = sum(int((twin(X[i:i + b]).argmax(1) == y[i:i + b]).sum()) for i in range(0, 12 - b + 1, b))
        assert norm.batch_stat_accuracy(net, X, y, b, shuffle=False) == hits / (12 // b * b)
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k], msg=lambda m, k=k: f"batch_stat_accuracy changed {k}: {m}")
    assert not net.training


@pytest.mark.slow
def test_experiment_quick_run():
    import json

    from convnets.experiments import normalization

    r = normalization.run(quick=True)
    json.dumps(r, allow_nan=False)  # JSON-able, no NaN
    assert {(s["norm"], s["init"], s["lr"]) for s in r["sweep"]} == {
        (n, i, normalization.EVAL_LR) for n, i in normalization.ARMS}
    assert all(s["diverged"] or 0.0 <= s["test_acc"] <= 1.0 for s in r["sweep"])
    assert {f["seed"] for f in r["forgetting"]} == {0, 1}
    assert all({"eval", "train_b1", "train_sorted100", "spoiled"} <= set(f) for f in r["forgetting"])
    assert all(s["initial_loss"] > 0 for s in r["sweep"])
    # the same seeded steps on one thread, twice, give the same weights
    assert [t["threads"] for t in r["threads_check"]] == [1, 1, 2] and r["threads_check"][1]["max_weight_diff"] == 0.0


@pytest.mark.slow
def test_small_batch_experiment_quick_run():
    import json

    from convnets.experiments import normalization_small_batch as sb

    r = sb.run(quick=True)
    json.dumps(r, allow_nan=False)
    assert {(s["norm"], s["stat_batch"]) for s in r["runs"]} == {
        ("batch", 4), ("batch", 32), ("group", None), ("layer", None)}
    assert all("test_acc_batch_stats" in s for s in r["runs"] if s["norm"] == "batch" and not s["diverged"])
    assert {s["lr"] for s in r["runs"]} == {sb.LR} and {s["batch_size"] for s in r["runs"]} == {sb.BATCH}
    # batch norm's statistics over 4 images are a GhostBatchNorm2d; over the whole batch plain batch norm
    assert [s["virtual_batch"] for s in r["runs"] if s["norm"] == "batch"][:2] == [4, None]


def test_train_one_stops_on_divergence():
    from convnets.data import TensorSplit
    from convnets.experiments.normalization import train_one

    g = torch.Generator().manual_seed(0)
    split = TensorSplit(torch.rand(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g),
                        torch.rand(16, 1, 28, 28, generator=g), torch.randint(0, 10, (16,), generator=g),
                        tuple(str(i) for i in range(10)))
    ok, _ = train_one(split, norm="batch", lr=0.01, batch_size=16, epochs=1, depth=3, width=2)
    split.X_train[5] = float("nan")  # a NaN loss at the first step: the run stops, marked diverged
    rec, _ = train_one(split, norm="none", init="he", lr=0.1, batch_size=64, epochs=2, depth=3, width=2)
    assert rec["diverged"] and rec["test_acc"] is None and rec["history"]["epoch"] == [1.0]
    assert rec["history"]["train_loss"] == [None]
    assert not ok["diverged"] and 0 <= ok["test_acc"] <= 1 and ok["history"]["epoch"] == [1.0]


def test_outcome_counts_blowups_and_runs_at_chance():
    """A run that blew up and came back, or one that stopped at chance, is not a success; the
    categories follow the thresholds of convnets.experiments.normalization."""
    from convnets.experiments.normalization import BLOWUP, CHANCE, TRAINS, outcome

    def rec(losses, acc, initial=2.3, diverged=False):
        return {"history": {"train_loss": losses}, "initial_loss": initial, "diverged": diverged, "test_acc": acc}

    assert outcome(rec([4.6e17, 2.31], 0.1)) == "diverged"           # back at a finite loss, still diverged
    assert outcome(rec([2.3 * BLOWUP * 1.01, 0.2], 0.95)) == "diverged"
    assert outcome(rec([2.3 * BLOWUP * 0.99, 0.2], 0.95)) == "trains"  # just below the blow-up factor
    assert outcome(rec([None], None, diverged=True)) == "diverged"      # NaN loss: training stopped
    assert outcome(rec([2.33, 2.31], CHANCE - 0.01)) == "chance"
    assert outcome(rec([2.0, 1.5], CHANCE)) == "learns"
    assert outcome(rec([1.0, 0.3], TRAINS - 0.001)) == "learns"
    assert outcome(rec([1.0, 0.3], TRAINS)) == "trains"


def test_initial_loss_is_the_cross_entropy_and_touches_nothing():
    from convnets.experiments.normalization import initial_loss
    from convnets.models.plain import plain_deep_cnn

    torch.manual_seed(0)
    X, y = torch.randn(1500, 1, 28, 28), torch.randint(0, 10, (1500,))
    plain = plain_deep_cnn(depth=3, width=4, norm="none")
    with torch.no_grad():
        ref = nn.functional.cross_entropy(plain(X), y).item()
    assert abs(initial_loss(plain, X, y) - ref) < 1e-5
    bn = plain_deep_cnn(depth=3, width=4, norm="batch").eval()
    before = {k: v.clone() for k, v in bn.state_dict().items()}
    rng = torch.get_rng_state()
    initial_loss(bn, X, y)
    assert torch.equal(rng, torch.get_rng_state()) and not bn.training
    for k, v in bn.state_dict().items():
        assert torch.equal(v, before[k]), f"initial_loss changed {k}"
