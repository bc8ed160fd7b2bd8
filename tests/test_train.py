"""convnets.train and convnets.utils: the loop learns, records, checkpoints, and fails clearly."""
import math

import pytest
import torch
from torch import nn

from convnets import data, models, train, utils


@pytest.fixture(scope="module")
def mnist():
    return data.mnist5k()


def test_fit_learns_mnist5k(mnist):
    train.seed_everything(0)
    tl, vl = data.loaders(mnist, batch_size=64)
    net = models.simple_cnn(width=8, hidden=32)
    h = train.fit(net, tl, vl, epochs=2, lr=2e-3, verbose=False)
    assert len(h) == 2 and h.epoch == [1, 2]
    assert h.train_loss[1] < h.train_loss[0] < math.log(10)  # below chance level's loss
    assert h.val_acc[-1] > 0.85, f"a small CNN should far exceed chance (0.10) after 2 epochs; got {h.val_acc[-1]}"
    ev = train.evaluate(net, vl)
    assert ev["n"] == 1000 and abs(ev["acc"] - h.val_acc[-1]) < 1e-9
    logits = train.predict(net, mnist.X_test)
    assert logits.shape == (1000, 10)
    assert abs(train.accuracy(logits, mnist.y_test) - ev["acc"]) < 1e-6
    assert all(s > 0 for s in h.seconds) and h.lr == [2e-3, 2e-3]


def test_fit_is_reproducible_with_seed(mnist):
    small = mnist.subset(20)
    runs = []
    for _ in range(2):
        train.seed_everything(7)
        tl, _ = data.loaders(small, batch_size=32, seed=7)
        net = models.simple_cnn(width=4, hidden=16)
        runs.append((train.fit(net, tl, epochs=2, verbose=False), net))
    assert runs[0][0].train_loss == runs[1][0].train_loss
    for p, q in zip(runs[0][1].parameters(), runs[1][1].parameters()):
        assert torch.equal(p, q)


def test_fit_matches_a_bare_loop():
    """fit's step is exactly zero_grad / forward / loss / backward / step."""
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(64, 1, 8, 8, generator=g), torch.randint(0, 3, (64,), generator=g)
    torch.manual_seed(1)
    a = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    b = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    b.load_state_dict(a.state_dict())
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):
        for Xb, yb in data.make_loader(X, y, 16, shuffle=False):
            opt_b.zero_grad()
            nn.functional.cross_entropy(b(Xb), yb).backward()
            opt_b.step()
    train.fit(a, data.make_loader(X, y, 16, shuffle=False), epochs=2,
              optimizer=torch.optim.SGD(a.parameters(), lr=0.1, momentum=0.9), verbose=False)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)


def test_fit_soft_targets_aux_outputs_and_scheduler():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Flatten()
            self.main, self.aux = nn.Linear(16, 4), nn.Linear(16, 4)

        def forward(self, x):
            z = self.body(x)
            return (self.main(z), self.aux(z)) if self.training else self.main(z)

    X, y = torch.randn(32, 1, 4, 4), torch.randint(0, 4, (32,))
    net = TwoHeads()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    soft = lambda Xb, yb: (Xb, nn.functional.one_hot(yb, 4).float())  # noqa: E731
    h = train.fit(net, data.make_loader(X, y, 8), data.make_loader(X, y, 8), epochs=2, optimizer=opt,
                  scheduler=sched, batch_transform=soft, verbose=False)
    assert h.lr == [0.1, 0.05]
    assert net.aux.weight.grad is not None  # auxiliary head trained


def test_fit_rejects_bad_input():
    net = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="epochs"):
        train.fit(net, [], epochs=-1, verbose=False)
    with pytest.raises(ValueError, match="no batches"):
        train.fit(net, [], epochs=1, verbose=False)
    with pytest.raises(TypeError, match="pair"):
        train.fit(net, [torch.randn(2, 2)], epochs=1, verbose=False)
    with pytest.raises(ValueError, match="amp"):
        train.fit(net, [(torch.randn(2, 2), torch.tensor([0, 1]))], epochs=1, amp="int8", verbose=False)


def test_checkpoint_round_trip(tmp_path, mnist):
    net = models.simple_cnn(width=4, hidden=8)
    opt = torch.optim.Adam(net.parameters())
    tl = data.make_loader(mnist.X_test[:64], mnist.y_test[:64], 32)
    h = train.fit(net, tl, epochs=1, optimizer=opt, verbose=False, checkpoint=tmp_path / "ck.pt")
    other = models.simple_cnn(width=4, hidden=8)
    opt2 = torch.optim.Adam(other.parameters())
    state = train.load_checkpoint(tmp_path / "ck.pt", other, opt2)
    for p, q in zip(net.parameters(), other.parameters()):
        assert torch.equal(p, q)
    assert state["history"].train_loss == h.train_loss
    assert opt2.state_dict()["state"].keys() == opt.state_dict()["state"].keys()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train.load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a checkpoint"):
        train.load_checkpoint(tmp_path / "junk.pt")


def test_history_json_and_plot(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    h = train.History()
    for e in (1, 2):
        h.append(epoch=e, train_loss=1.0 / e, train_acc=0.5, val_loss=float("nan"), val_acc=float("nan"), seconds=0.1, lr=0.01)
    h.save(tmp_path / "h.json")
    again = train.History.load(tmp_path / "h.json")
    assert again.train_loss == h.train_loss and len(again) == 2
    axes = h.plot(label="run")
    assert len(axes) == 2 and axes[0].get_xlabel() == "epoch"
    again.extend(h)
    assert again.epoch == [1, 2, 3, 4]


def test_utils_counts_summary_and_device():
    net = models.simple_cnn()
    total, trainable = utils.parameter_counts(net)
    assert total == sum(p.numel() for p in net.parameters()) == 421_642
    net.features[0].weight.requires_grad_(False)
    assert utils.count_parameters(net, trainable_only=True) == total - net.features[0].weight.numel()
    s = utils.summary(net, (1, 1, 28, 28))
    convs = [r for r in s if r.kind == "Conv2d"]
    assert [r.output_shape for r in convs] == [(1, 32, 28, 28), (1, 64, 14, 14)]
    assert sum(r.params for r in s) == total and s.total == total
    assert "total parameters: 421,642" in str(s)
    assert utils.get_device("cpu").type == "cpu"
    assert utils.get_device().type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA"):
            utils.get_device("cuda")


def test_train_one_epoch_is_the_plain_loop():
    """One epoch of train_one_epoch equals the textbook loop written out here (same seed, same
    batches): the same weights after, and the loss it reports is the mean of the batch losses."""
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(40, 1, 4, 4, generator=g), torch.randint(0, 3, (40,), generator=g)
    batches = [(X[i:i + 8], y[i:i + 8]) for i in range(0, 40, 8)]

    def make():
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(16, 3))

    net = make()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    got = train.train_one_epoch(net, batches, opt)
    ref = make()
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    losses, correct = [], 0
    for xb, yb in batches:
        out = ref(xb)
        loss = nn.functional.cross_entropy(out, yb)
        correct += int((out.argmax(1) == yb).sum())
        ref_opt.zero_grad()
        loss.backward()
        ref_opt.step()
        losses.append(loss.item())
    for a, b in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b)
    assert got["n"] == 40
    assert got["loss"] == pytest.approx(sum(losses) / len(losses), rel=1e-6)
    assert got["acc"] == pytest.approx(correct / 40)
    ev = train.evaluate(net, batches)
    with torch.no_grad():
        logits = net(X)
    assert ev["loss"] == pytest.approx(nn.functional.cross_entropy(logits, y).item(), rel=1e-6)
    assert ev["acc"] == pytest.approx((logits.argmax(1) == y).float().mean().item())


def test_running_metrics_soft_targets_and_empty():
    m = train.RunningMetrics(torch.device("cpu"))
    with pytest.raises(ValueError, match="no batches"):
        m.result()
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    soft = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4]])  # argmax 0, 0, 0
    m.update(torch.tensor(0.5), logits, soft)
    m.update(torch.tensor(1.5), logits[:1], torch.tensor([1]))
    r = m.result()
    assert r == {"loss": pytest.approx((0.5 * 3 + 1.5) / 4), "acc": pytest.approx(2 / 4), "n": 4}
