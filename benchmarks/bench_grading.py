"""Benchmark: serial nbgrader vs ``convnets-grade --jobs 2`` on N copies of a real solution.

Prints seconds per submission for each, the speedup, and whether the scores agree.

    python benchmarks/bench_grading.py                 # 40 copies of 00-warmup's solution
    python benchmarks/bench_grading.py --copies 10 --assignment 00-warmup --jobs 2

Takes minutes (it is not part of the test suite). Wall times depend on the machine's load:
say under what load they were measured.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assignment", default="00-warmup")
    ap.add_argument("--copies", type=int, default=40)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--isolation", default="auto")
    args = ap.parse_args()
    a = args.assignment
    src = ROOT / "solutions" / a
    tmp = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    try:
        # serial nbgrader in a copy of the course
        course = tmp / "course"
        (course / "solutions").mkdir(parents=True)
        shutil.copy(ROOT / "nbgrader_config.py", course)
        shutil.copytree(src, course / "solutions" / a)
        env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}", JUPYTER_PLATFORM_DIRS="1")
        run = lambda *cmd: subprocess.run([str(BIN / "nbgrader"), *cmd, f"--CourseDirectory.root={course}"],  # noqa: E731
                                          cwd=course, env=env, check=True, capture_output=True)
        run("generate_assignment", a, "--force")
        subs = tmp / "subs"
        for i in range(args.copies):
            student = f"s{i:03d}"
            for base in (course / "submitted" / student / a, subs / student):
                base.mkdir(parents=True)
                for nb in src.glob("*.ipynb"):
                    shutil.copy(nb, base / nb.name)
        t0 = time.perf_counter()
        run("autograde", a, "--force")
        serial = time.perf_counter() - t0
        t0 = time.perf_counter()
        run("generate_feedback", a, "--force")
        serial_fb = time.perf_counter() - t0
        sys.path.insert(0, str(ROOT / "src"))
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            serial_scores = {f"s{i:03d}": gb.find_submission(a, f"s{i:03d}").score for i in range(args.copies)}

        from convnets.grading.runner import Options, grade_all

        t0 = time.perf_counter()
        records = grade_all(Options(assignment=a, submissions=subs, out=tmp / "out", course=ROOT,
                                    jobs=args.jobs, isolation=args.isolation))
        ours = time.perf_counter() - t0
        our_scores = {r["student"]: r["total"] for r in records}
        n = args.copies
        print(f"\n{n} copies of {a}'s solution on {os.cpu_count()} cores "
              f"(load average before/after: {os.getloadavg()[0]:.1f})")
        print(f"serial nbgrader autograde : {serial:7.1f} s  ({serial / n:.2f} s per submission)")
        print(f"convnets-grade --jobs {args.jobs}  : {ours:7.1f} s  ({ours / n:.2f} s per submission, "
              "isolated, with feedback)")
        print(f"  + nbgrader feedback     : {serial + serial_fb:7.1f} s  ({(serial + serial_fb) / n:.2f} s per submission)")
        print(f"speedup                   : {serial / ours:.2f}x over autograde alone, "
              f"{(serial + serial_fb) / ours:.2f}x over autograde + feedback")
        print(f"same scores               : {our_scores == serial_scores} "
              f"(all {sorted(set(our_scores.values()))}, nbgrader {sorted(set(serial_scores.values()))})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
