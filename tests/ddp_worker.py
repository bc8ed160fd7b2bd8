"""Run by tests/test_distributed.py under torchrun (2 processes, gloo) or alone (1 process):
trains a small model with convnets.train.fit and saves the final weights."""
import sys

import torch
from torch import nn

from convnets import data, train


def main(out: str, global_batch: int = 16) -> None:
    rank, world = train.init_distributed("gloo")
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(96, 1, 8, 8, generator=g), torch.randint(0, 4, (96,), generator=g)
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 4))
    loader = data.make_loader(X, y, batch_size=global_batch // world, shuffle=False, distributed=world > 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    history = train.fit(net, loader, epochs=3, optimizer=opt, device="cpu", verbose=False)
    if rank == 0:
        torch.save({"state": net.state_dict(), "loss": history.train_loss}, out)
    if world > 1:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
