"""Instructor autograding around nbgrader: one command, parallel, isolated, robust.

``convnets-grade ASSIGNMENT SUBMISSIONS --out DIR`` (or ``python -m convnets.grading``) collects
a folder or LMS zip of notebooks, repairs what nbgrader cannot read, grades each submission in
its own course folder with a sandboxed kernel (no network, a memory limit, time limits, no access
to solutions, the gradebook or other students' work), in parallel, and writes a grades CSV,
per-student HTML feedback without hidden tests, a log and nbgrader's gradebook. The workflow
(release, collect, grade, return feedback) and the isolation requirements are in
``docs/instructors.md``.

Modules: :mod:`.collect` (files to students), :mod:`.sanitize` (parse and repair notebooks),
:mod:`.sandbox` (the kernel's isolation), :mod:`.preprocessors` (nbgrader fixes),
:mod:`.worker` (one submission), :mod:`.runner` (the run).
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

__all__ = ["main", "parse_size"]


def parse_size(text: str) -> int:
    """``"4G"``, ``"512M"``, ``"1.5GiB"`` or a number of bytes -> bytes."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([kmgt]?)(i?b)?\s*", text.lower())
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 4G, 512M or a number of bytes)")
    return int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " "))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="convnets-grade",
        description="Autograde every submission of an nbgrader assignment, in parallel and isolated.",
        epilog="Statuses: graded, failed (reason), timeout, out_of_memory, crashed, not_a_notebook. "
               "Full guide: docs/instructors.md")
    p.add_argument("assignment", help="assignment name, e.g. 00-warmup (its source is COURSE/solutions/ASSIGNMENT)")
    p.add_argument("submissions", type=Path, help="a folder or a zip of submitted notebooks")
    p.add_argument("--out", type=Path, required=True, help="output folder (grades.csv, feedback/, gradebook.db, logs)")
    p.add_argument("--course", type=Path, default=Path("."), help="course root holding solutions/ (default: .)")
    p.add_argument("--source-directory", default="solutions", help="folder of the source notebooks (default: solutions)")
    p.add_argument("-j", "--jobs", type=int, default=0, help="submissions graded at once (default: number of cores)")
    p.add_argument("--force", action="store_true", help="regrade submissions already graded in --out")
    p.add_argument("--cell-timeout", type=int, default=120, help="seconds a cell may run (default: 120)")
    p.add_argument("--timeout", type=int, default=900, help="seconds a whole submission may run (default: 900)")
    p.add_argument("--memory", type=parse_size, default=parse_size("4G"), help="memory per kernel (default: 4G)")
    p.add_argument("--max-output", type=int, default=100_000, help="characters of output kept per cell")
    p.add_argument("--isolation", choices=["auto", "root", "userns", "none"], default="auto",
                   help="kernel isolation (default: the strongest this machine allows)")
    p.add_argument("--regexp", help="regular expression with a (?P<student_id>...) group, matched on each path")
    p.add_argument("--keep-work", action="store_true", help="keep the per-student working folders (debugging)")
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings only on the console")
    return p


def main(argv: list[str] | None = None) -> int:
    """Console entry point ``convnets-grade``; returns 0 when every submission got a row."""
    from .runner import Options, grade_all

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(message)s")
    logging.getLogger("convnets.grading").setLevel(logging.INFO)
    if args.jobs < 0:
        raise SystemExit("--jobs must be 0 (all cores) or a positive number")
    opts = Options(assignment=args.assignment, submissions=args.submissions, out=args.out, course=args.course,
                   source_directory=args.source_directory, jobs=args.jobs, force=args.force,
                   cell_timeout=args.cell_timeout, timeout=args.timeout, memory=args.memory,
                   max_output_chars=args.max_output, isolation=args.isolation, regexp=args.regexp,
                   keep_work=args.keep_work)
    try:
        records = grade_all(opts)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"convnets-grade: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("convnets-grade: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    width = max([len(r["student"]) for r in records] + [7])
    for r in records:
        print(f"{r['student']:<{width}}  {r['status']:<14} {r['total']:>6g} / {r['max_total']:<6g} {r['reason'][:80]}")
    print(f"grades: {Path(args.out) / 'grades.csv'}")
    return 0
