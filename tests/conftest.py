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
    # same cache key as scripts/build-book.sh: a change in src/convnets or results/ re-executes the chapters
    key = subprocess.run(["bash", "scripts/book-cache-key.sh"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.split()[0]
    (ROOT / "_build").mkdir(exist_ok=True)
    stamp = ROOT / "_build" / ".src-key"
    if stamp.is_file() and stamp.read_text().strip() != key:
        shutil.rmtree(ROOT / "_build" / ".jupyter_cache", ignore_errors=True)
    stamp.write_text(key)
    offline = _offline_prefix()
    cmd = [*offline, str(BIN / "jupyter-book"), "build", str(ROOT), "-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000)
    return proc, bool(offline)
