"""Shared pytest settings: GPU tests are skipped where CUDA is absent."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run `pytest -m gpu` on a machine with one)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _offline_prefix() -> list[str]:
    """Run in a new network namespace with only loopback up, where the OS allows it."""
    if shutil.which("unshare") and shutil.which("ip"):
        probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
        if probe.returncode == 0:
            return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "offline"]
    return []


@pytest.fixture(scope="session")
def book_build():
    """Build the book once per test session (offline where possible); returns (process, offline)."""
    subprocess.run(["bash", str(ROOT / "scripts" / "vendor-assets.sh")], check=True)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "PYTHONWARNINGS": "ignore"}
    offline = _offline_prefix()
    # the README's build, set-up already done by scripts/test.sh (pip needs the network)
    cmd = [*offline, "bash", str(ROOT / "scripts" / "build-book.sh")]
    env["BOOK_SKIP_SETUP"] = "1"
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000)
    return proc, bool(offline)
