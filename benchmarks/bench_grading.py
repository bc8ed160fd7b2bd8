"""Benchmark: plain serial nbgrader against ``convnets-grade``, side by side in one run.

For each assignment, N copies of its solution are split into blocks of students; block after
block, the two take turns (serial ``nbgrader autograde`` + ``generate_feedback`` for the block's
students in one course folder, and ``convnets-grade`` on the same students, isolated, feedback
included; the order flips from block to block), so both see the same machine load. Each is a
fresh command per block (process start and imports included). The first students of block 1 are also graded
with ``convnets-grade --fresh-processes`` (a worker process and a cold kernel per student, the
grader before the worker pool and the kernel fork server): its per-phase times are the "before"
of the breakdown.

Prints, per assignment: seconds per submission for each arm, the ratio per block (mean, std,
range) and overall, whether the scores agree, and the mean seconds per phase.

    python benchmarks/bench_grading.py                       # 40 copies of 00-warmup and of 05-resnet
    python benchmarks/bench_grading.py --copies 8 --block 4 --assignments 00-warmup

Takes long (about 20 s per submission and arm on a loaded 2-core machine; it is not a test).
Wall times depend on the load: the load average is printed with every block.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PHASES = ("process_start", "imports", "gradebook", "kernel_start", "first_cell", "execution", "feedback")


def run(cmd: list[str], env: dict, cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def phases_of(out: Path, students: list[str]) -> dict[str, float]:
    """Mean seconds per phase over ``students`` (one-off costs of a worker spread over them)."""
    sums = dict.fromkeys(PHASES, 0.0)
    for s in students:
        rec = json.loads((out / "results" / f"{s}.json").read_text())
        for k, v in rec.get("phases", {}).items():
            if k in sums:
                sums[k] += v
    return {k: v / len(students) for k, v in sums.items()}


def bench(a: str, copies: int, block: int, jobs: int, fresh: int, tmp: Path, env: dict, log) -> dict:
    src = ROOT / "solutions" / a
    course = tmp / a / "course"
    (course / "solutions").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(src, course / "solutions" / a)
    nbg = lambda *args: [str(BIN / "nbgrader"), *args, f"--CourseDirectory.root={course}"]  # noqa: E731
    run(nbg("generate_assignment", a, "--force"), env, course)
    # the release step of both arms is untimed: convnets-grade releases into its --out once
    (tmp / a / "empty").mkdir()
    run([sys.executable, "-m", "convnets.grading", a, str(tmp / a / "empty"), "--out", str(tmp / a / "out"),
         "--course", str(ROOT), "--no-progress", "-q"], env, ROOT)
    blocks = [list(range(i, min(i + block, copies))) for i in range(0, copies, block)]
    name = lambda b, i: f"b{b}s{i:03d}"  # noqa: E731
    out, fresh_out = tmp / a / "out", tmp / a / "out-fresh"
    serial_t, ours_t, ratios, fresh_t = [], [], [], None
    for b, members in enumerate(blocks):
        subs = tmp / a / f"subs{b}"
        for i in members:
            for base in (course / "submitted" / name(b, i) / a, subs / name(b, i)):
                base.mkdir(parents=True)
                for nb in src.glob("*.ipynb"):
                    shutil.copy(nb, base / nb.name)

        def serial() -> float:
            sel = f"--CourseDirectory.student_id=b{b}s*"
            return run(nbg("autograde", a, "--force", sel), env, course) + \
                run(nbg("generate_feedback", a, "--force", sel), env, course)

        def ours(dest: Path = out, *extra: str) -> float:
            return run([sys.executable, "-m", "convnets.grading", a, str(subs), "--out", str(dest), "--course", str(ROOT),
                        "--jobs", str(jobs), "--no-progress", "-q", *extra], env, ROOT)

        load = os.getloadavg()[0]
        if b % 2 == 0:
            s, o = serial(), ours()
        else:
            o, s = ours(), serial()
        serial_t.append(s)
        ours_t.append(o)
        ratios.append(s / o)
        log(f"{a} block {b + 1}/{len(blocks)} ({len(members)} students, load {load:.1f}): "
            f"nbgrader {s:.1f} s, convnets-grade {o:.1f} s, ratio {s / o:.2f}")
        if b == 0 and fresh:
            few = tmp / a / "subs-fresh"
            for i in members[:fresh]:
                shutil.copytree(subs / name(b, i), few / name(b, i))
            fresh_t = run([sys.executable, "-m", "convnets.grading", a, str(few), "--out", str(fresh_out), "--course",
                           str(ROOT), "--jobs", str(jobs), "--no-progress", "-q", "--fresh-processes"], env, ROOT)
            log(f"{a} block 1, first {fresh} students, convnets-grade --fresh-processes: {fresh_t:.1f} s")
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        serial_scores = {s.id: gb.find_submission(a, s.id).score for s in gb.students}
    with open(out / "grades.csv", newline="") as fh:
        our_scores = {r["student"]: float(r["total"]) for r in csv.DictReader(fh)}
    students = sorted(our_scores)
    return {
        "assignment": a, "copies": copies, "block": block, "jobs": jobs,
        "serial_s": sum(serial_t), "ours_s": sum(ours_t), "ratio": sum(serial_t) / sum(ours_t),
        "block_ratios": ratios, "fresh_s": fresh_t, "fresh_n": fresh,
        "same_scores": our_scores == serial_scores, "scores": sorted(set(our_scores.values())),
        "serial_scores": sorted(set(serial_scores.values())),
        "phases_ours": phases_of(out, students),
        "phases_fresh": phases_of(fresh_out, [name(0, i) for i in blocks[0][:fresh]]) if fresh else {},
        "statuses": sorted({json.loads(p.read_text())["status"] for p in (out / "results").glob("*.json")}),
    }


def report(r: dict) -> str:
    n = r["copies"]
    br = r["block_ratios"]
    lines = [f"{r['assignment']}: {n} copies of the solution, blocks of {r['block']}, convnets-grade --jobs {r['jobs']}",
             f"  serial nbgrader autograde + generate_feedback : {r['serial_s']:7.1f} s ({r['serial_s'] / n:.2f} s per submission)",
             f"  convnets-grade (isolated, feedback)           : {r['ours_s']:7.1f} s ({r['ours_s'] / n:.2f} s per submission)",
             f"  ratio {r['ratio']:.2f}x; per block mean {statistics.mean(br):.2f} "
             f"± {statistics.stdev(br) if len(br) > 1 else 0:.2f}, range {min(br):.2f}-{max(br):.2f} ({len(br)} blocks)",
             f"  same scores: {r['same_scores']} (ours {r['scores']}, nbgrader {r['serial_scores']}; statuses {r['statuses']})",
             f"  {r['fresh_n']} students with --fresh-processes: {r['fresh_s'] or 0:.1f} s",
             "  mean seconds per submission and phase (worker's clock; with --jobs 2 two run at once):",
             "    phase          fresh processes   pool + fork server"]
    for k in PHASES:
        lines.append(f"    {k:<14} {r['phases_fresh'].get(k, 0):15.2f} {r['phases_ours'][k]:20.2f}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assignments", nargs="+", default=["00-warmup", "05-resnet"])
    ap.add_argument("--copies", type=int, default=40)
    ap.add_argument("--block", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--fresh", type=int, default=5, help="students of block 1 also graded with --fresh-processes")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folders")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    # both arms use a snapshot of the library, so editing the checkout meanwhile changes nothing
    shutil.copytree(ROOT / "src", tmp / "src", ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}", JUPYTER_PLATFORM_DIRS="1",
               PYTHONPATH=str(tmp / "src"), MPLBACKEND="Agg", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t0 = time.time()

    def log(msg: str) -> None:
        print(f"[{time.time() - t0:7.0f} s] {msg}", flush=True)

    log(f"{os.cpu_count()} cores, load average {os.getloadavg()}")
    results = []
    try:
        for a in args.assignments:
            results.append(bench(a, args.copies, args.block, args.jobs, args.fresh, tmp, env, log))
            if args.json:
                args.json.write_text(json.dumps(results, indent=1))
            try:
                print(report(results[-1]), flush=True)
            except Exception as e:  # the numbers are in --json
                print(f"report failed: {e!r}\n{json.dumps(results[-1], indent=1)}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"done; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
