"""Execute the book's chapters in parallel (one kernel per CPU core) into the execution cache
that the book build reads (``_build/.jupyter_cache``), so that ``jupyter-book build`` then only
renders. A chapter whose code has not changed since its cached execution is not run again; one
that fails is left out of the cache, and the build runs it again and reports the error.

    python scripts/execute_chapters.py [--serial]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import yaml
from jupyter_cache import get_cache
from jupyter_cache.executors import load_executor

ROOT = Path(__file__).resolve().parents[1]


def chapters() -> list[Path]:
    """The executable pages of the table of contents, in order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]] + [c["file"] for c in toc.get("chapters", [])]
    out = []
    for f in files:
        p = ROOT / f"{f}.md"
        if p.is_file() and "kernelspec:" in p.read_text(encoding="utf-8")[:600]:
            out.append(p)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--serial", action="store_true", help="one chapter at a time")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = ap.parse_args(argv)
    cache = get_cache(ROOT / "_build" / ".jupyter_cache")
    for p in chapters():
        cache.add_nb_to_project(str(p), read_data={"name": "myst_nb_md", "type": "plugin"})
    t0 = time.perf_counter()
    # local: each chapter runs in its own folder, as in the build; parallel: a pool of one
    # process per CPU core
    executor = load_executor("local-serial" if args.serial else "local-parallel", cache=cache)
    result = executor.run_and_cache(timeout=args.timeout)
    # a fingerprint of the cache's records: scripts/build-book.sh re-reads every page of an
    # edition rendered from other executions than these
    records = sorted((r.uri, r.hashkey, str(r.created)) for r in cache.list_cache_records())
    (ROOT / "_build" / ".cache-state").write_text(hashlib.sha256(repr(records).encode()).hexdigest() + "\n")
    print(f"execute-chapters: {len(result.succeeded)} executed, {len(result.errored)} failed "
          f"(the build reruns and reports them), {len(result.excepted)} could not run, "
          f"{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
