"""fit under torchrun with DistributedDataParallel: two CPU processes (gloo) sharing a global
batch end with the same weights as one process with the whole batch."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow  # starts torchrun with two processes

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_match_one(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    single = tmp_path / "single.pt"
    subprocess.run([sys.executable, str(HERE / "ddp_worker.py"), str(single)], check=True, env=env, timeout=300)
    ddp = tmp_path / "ddp.pt"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
         "--master_addr=127.0.0.1", f"--master_port={_free_port()}", str(HERE / "ddp_worker.py"), str(ddp)],
        env=env, timeout=300, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    a, b = torch.load(single), torch.load(ddp)
    assert a["state"].keys() == b["state"].keys()
    for k in a["state"]:
        torch.testing.assert_close(b["state"][k], a["state"][k], rtol=1e-5, atol=1e-6, msg=f"weight {k} differs")
    # the loss fit reports is the mean over the global batch, in both runs
    torch.testing.assert_close(torch.tensor(b["loss"]), torch.tensor(a["loss"]), rtol=1e-5, atol=1e-6)
    assert a["loss"][-1] < a["loss"][0]
