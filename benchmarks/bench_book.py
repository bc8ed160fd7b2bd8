"""Book build times: each chapter's execution time, a build from clean and a rebuild with nothing changed.

    python benchmarks/bench_book.py            # per-chapter execution times of the last build
    python benchmarks/bench_book.py --build    # build from clean (all chapters executed), then
                                               # rebuild with nothing changed; print all three

The per-chapter times are those jupyter-cache recorded when it executed each chapter (the
cache lives in ``_build/.jupyter_cache``). ``--build`` deletes ``_build`` first: run it when you
can wait (budget: under 10 minutes from clean and under 30 s for a rebuild on the 2-core CPU).
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"


def build(label: str) -> float:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    t = time.perf_counter()
    proc = subprocess.run(["bash", "scripts/build-book.sh"], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"{label}: the build failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    print(f"{label:32s} {seconds:7.1f} s", flush=True)
    return seconds


def chapter_times() -> list[tuple[str, float | None]]:
    from jupyter_cache import get_cache

    cache_dir = BUILD / ".jupyter_cache"
    if not cache_dir.is_dir():
        sys.exit("no build cache in _build/.jupyter_cache: build the book first (bash scripts/build-book.sh), "
                 "or run this benchmark with --build")
    rows = []
    for rec in get_cache(str(cache_dir)).list_cache_records():
        rows.append((Path(rec.uri).relative_to(ROOT).as_posix() if Path(rec.uri).is_absolute() else rec.uri,
                     (rec.data or {}).get("execution_seconds")))
    return sorted(rows)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", action="store_true", help="build from clean, then rebuild with nothing changed")
    args = ap.parse_args(argv)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    if args.build:
        shutil.rmtree(BUILD, ignore_errors=True)
        build("build from clean")
        build("rebuild, nothing changed")
    rows = chapter_times()
    print(f"{'chapter':45s} {'executed in':>12s}")
    total = 0.0
    for uri, sec in rows:
        print(f"{uri:45s} {'?' if sec is None else f'{sec:9.1f} s':>12s}")
        total += sec or 0.0
    print(f"{'all chapters':45s} {total:9.1f} s")
    pages = sorted(p.relative_to(BUILD / "html").as_posix() for p in (BUILD / "html").rglob("*.html")
                   if not p.relative_to(BUILD / "html").as_posix().startswith(("_", "genindex", "search")))
    print(f"HTML pages of the book: {len(pages)}")


if __name__ == "__main__":
    main()
