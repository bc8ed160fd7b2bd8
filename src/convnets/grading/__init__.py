"""Instructor autograding around nbgrader: one command, parallel, isolated, robust.

``convnets-grade ASSIGNMENT SUBMISSIONS --out DIR`` (or ``python -m convnets.grading``) collects
a folder or LMS zip of notebooks, repairs what nbgrader cannot read, grades each submission in
its own course folder with a sandboxed kernel (no network, a memory limit, time limits, no access
to solutions, the gradebook or other students' work), in parallel, and writes a grades CSV,
per-student HTML feedback without hidden tests, a log and nbgrader's gradebook. The workflow
(release, collect, grade, return feedback) and the isolation requirements are in
``docs/instructors.md``.

``convnets-grade merge OUT1 OUT2 ... --out OUT`` combines the folders of several shards
(``--shard K/N``, one per machine) into one.

Modules: :mod:`.options` (options and the record of a student), :mod:`.rules` (the grading rules,
shared with ``nbgrader_config.py``), :mod:`.collect` (files to students), :mod:`.sanitize` and
:mod:`.recover` (parse and repair notebooks, recognise cells whose metadata was lost),
:mod:`.prepare` (the release and each student's folder), :mod:`.sandbox` (the kernel's
isolation), :mod:`.zygote` (the kernel fork server), :mod:`.preprocessors` (nbgrader fixes),
:mod:`.worker` (grading in a private course folder), :mod:`.pool` (the workers),
:mod:`.report` (CSV, gradebook, feedback, merge), :mod:`.runner` (the run).
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

from . import rules

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
    p.add_argument("--cell-timeout", type=int, default=rules.CELL_TIMEOUT,
                   help=f"seconds a cell may run (default: {rules.CELL_TIMEOUT}, as nbgrader_config.py)")
    p.add_argument("--timeout", type=int, default=900, help="seconds a whole submission may run (default: 900)")
    p.add_argument("--memory", type=parse_size, default=parse_size("4G"), help="memory per kernel (default: 4G)")
    p.add_argument("--max-output", type=int, default=100_000, help="characters of output kept per cell")
    p.add_argument("--isolation", choices=["auto", "root", "userns", "none"], default="auto",
                   help="kernel isolation (default: the strongest this machine allows)")
    p.add_argument("--regexp", help="regular expression with a (?P<student_id>...) group, matched on each path")
    p.add_argument("--shard", metavar="K/N", help="grade only shard K of N (by a hash of the student id; "
                   "combine the N output folders with `convnets-grade merge`)")
    p.add_argument("--fresh-processes", action="store_true",
                   help="a new worker process and a cold kernel per student (slower; no fork server)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--keep-work", action="store_true", help="keep the per-student working folders (debugging)")
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings only on the console")
    return p


def merge_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="convnets-grade merge",
        description="Combine the output folders of several runs (one per shard) into one: grades.csv, "
                    "results, gradebook.db, feedback, autograded notebooks and logs.")
    p.add_argument("folders", nargs="+", type=Path, help="output folders of `convnets-grade ... --shard K/N`")
    p.add_argument("--out", type=Path, required=True, help="the combined output folder (a new one)")
    return p


def _print_rows(records, out: Path) -> None:
    width = max([len(r.student) for r in records] + [7])
    for r in records:
        print(f"{r.student:<{width}}  {r.status:<14} {r.total:>6g} / {r.max_total:<6g} {r.reason[:80]}")
    print(f"grades: {out / 'grades.csv'}")


def main(argv: list[str] | None = None) -> int:
    """Console entry point ``convnets-grade``; returns 0 when every submission got a row."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        print("convnets-grade: error: nbgrader is not installed; install the grading extra: "
              "pip install 'convnets[grading]' (or the repository's requirements.txt)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    logging.getLogger("convnets.grading").setLevel(logging.INFO)
    if argv[:1] == ["merge"]:
        from .report import merge, summary

        margs = merge_parser().parse_args(argv[1:])
        try:
            records = merge(margs.folders, margs.out)
        except (FileNotFoundError, ValueError) as e:
            print(f"convnets-grade merge: error: {e}", file=sys.stderr)
            return 2
        _print_rows(records, margs.out)
        print(summary(records, 0.0, 0))
        return 0
    from .options import Options
    from .runner import grade_all

    args = build_parser().parse_args(argv)
    if args.quiet:
        logging.getLogger().setLevel(logging.WARNING)
        for h in logging.getLogger().handlers:
            h.setLevel(logging.WARNING)
    opts = Options(assignment=args.assignment, submissions=args.submissions, out=args.out, course=args.course,
                   source_directory=args.source_directory, jobs=args.jobs, force=args.force,
                   cell_timeout=args.cell_timeout, timeout=args.timeout, memory=args.memory,
                   max_output_chars=args.max_output, isolation=args.isolation, regexp=args.regexp,
                   keep_work=args.keep_work, shard=args.shard, fresh_processes=args.fresh_processes,
                   progress=not args.no_progress)
    try:
        records = grade_all(opts)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"convnets-grade: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("convnets-grade: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    _print_rows(records, Path(args.out))  # the summary is the log's last lines
    return 0
