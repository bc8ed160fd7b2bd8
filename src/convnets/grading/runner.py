"""The instructor's grading run: collect, repair, grade in parallel and isolated, report.

See ``docs/instructors.md`` for the whole workflow. This module only orchestrates; the parts are
:mod:`.options` (options, records), :mod:`.collect`, :mod:`.prepare` (release, per-student
folders), :mod:`.pool` (workers, kernel fork server) and :mod:`.report` (CSV, gradebook,
feedback, merge). Layout of ``--out``::

    OUT/grades.csv                  a row per student: status, reason, total, points per test, notes
    OUT/gradebook.db                nbgrader's gradebook (written by this process only)
    OUT/feedback/STUDENT/NB.html    feedback to return: summary table + the graded notebook,
                                    hidden tests removed
    OUT/autograded/STUDENT/NB.ipynb the executed notebook (instructor's copy, hidden tests in)
    OUT/results/STUDENT.json        the record behind each row (used to resume and to merge)
    OUT/logs/STUDENT.log            nbgrader's log for that student
    OUT/grading.log                 the run's log
    OUT/.grader/                    the released assignment and per-student working folders
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import time
from pathlib import Path

from . import sandbox
from .collect import Submission, collect
from .options import STATUSES, CellScore, Options, Record, shard_of  # noqa: F401 - re-exported
from .pool import Pool
from .prepare import Template, build_template, new_record, prepare  # noqa: F401 - re-exported
from .report import Progress, feedback_page, merge_gradebook, summary, write_csv, write_record
from .zygote import preload_for

log = logging.getLogger("convnets.grading")


def resolve_level(requested: str) -> str:
    level, why = sandbox.detect_level()
    if requested == "auto":
        if level == "none":
            log.warning("ISOLATION OFF: %s. Student code will run with your user's rights, network and files "
                        "(only time, memory and output limits apply). See docs/instructors.md, 'Isolation'.", why)
        else:
            log.info("isolation: %s (%s)", level, why)
        return level
    if requested != "none" and sandbox.LEVELS.index(requested) < sandbox.LEVELS.index(level):
        raise RuntimeError(f"--isolation {requested} is not available here: {why}")
    if requested == "none":
        log.warning("ISOLATION OFF (--isolation none): student code runs with your rights, network and files")
    return requested


def grade_all(opts: Options) -> list[Record]:
    """Grade every submission in ``opts.submissions`` (or the ``opts.shard`` share of them);
    return the records, one per student, sorted by student id. ``opts`` is not changed."""
    opts = opts.validated()
    opts.out.mkdir(parents=True, exist_ok=True)
    (opts.out / "results").mkdir(exist_ok=True)
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)
    handler = logging.FileHandler(opts.out / "grading.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    try:
        return _grade_all(opts)
    finally:
        log.removeHandler(handler)
        handler.close()


def _grade_all(opts: Options) -> list[Record]:
    level = resolve_level(opts.isolation)
    subs, orphans = collect(opts.submissions, opts.assignment, opts.regexp)
    for o in orphans:
        log.warning("no student id in %s: ignored (name files STUDENT/... or STUDENT_%s.ipynb, or pass --regexp)",
                    o, opts.assignment)
    if opts.shard:
        k, n = opts.shard
        everyone = len(subs)
        subs = {s: sub for s, sub in subs.items() if shard_of(s, n) == k}
        log.info("shard %d/%d: %d of %d students", k, n, len(subs), everyone)
    log.info("%d submissions of %s in %s", len(subs), opts.assignment, opts.submissions)
    pending: list[Submission] = []
    done: list[Record] = []
    for sid, sub in subs.items():
        rec_file = opts.out / "results" / f"{sid}.json"
        if rec_file.exists() and not opts.force:
            old = Record.from_dict(json.loads(rec_file.read_text()))
            if old.digest == sub.digest():
                log.info("%s: already graded (%s, %g), skipped; --force regrades", sid, old.status, old.total)
                done.append(old)
                continue
        pending.append(sub)
    # the fork server (importing torch) and the workers (importing nbgrader) start now, while the
    # assignment is released: the three run at once
    pool = Pool(opts, level, preload_for(_source_code(opts)), warm=min(opts.jobs, len(pending))) if pending else None
    try:
        return _grade(opts, level, pending, done, pool)
    finally:
        if pool is not None:
            pool.close()


def _source_code(opts: Options) -> list[str]:
    """The code cells of the assignment's source notebooks ([] when there are none)."""
    import nbformat

    src = opts.course / opts.source_directory / opts.assignment
    return [c.source for p in sorted(src.glob("*.ipynb")) for c in nbformat.read(str(p), as_version=4).cells
            if c.cell_type == "code"] if src.is_dir() else []


def _grade(opts: Options, level: str, pending: list[Submission], done: list[Record], pool: Pool | None) -> list[Record]:
    tmpl = build_template(opts)
    test_ids = [gid for _, gid, _ in tmpl.tests]
    kept = len(done)
    t_start = time.monotonic()
    progress = Progress(len(pending), enabled=opts.progress)

    def finish(record: Record) -> Record:
        record.finish(tmpl.tests)
        record.graded_at = time.strftime("%Y-%m-%d %H:%M:%S")
        merge_gradebook(record, opts.out / "gradebook.db", opts.assignment, opts.course_id)
        feedback_page(record, opts.out, opts.assignment)
        write_record(opts.out, record)
        write_csv(opts.out, test_ids)
        log.info("%s: %s%s, %g / %g", record.student, record.status,
                 f" ({record.reason})" if record.reason else "", record.total, record.max_total)
        for n in record.notes:
            log.info("%s: note: %s", record.student, n)
        progress.step()
        return record

    if pending and pool is not None:
        def task(sub: Submission) -> Record:
            try:
                job, record = prepare(sub, tmpl, opts, level, launcher=pool.launcher())
                if job is None:
                    return record
                return pool.run(job, record)
            except Exception as e:  # never let one submission stop the others
                log.exception("%s: grading failed", sub.student)
                return new_record(sub, "failed", f"grader error: {type(e).__name__}: {e}")

        with cf.ThreadPoolExecutor(max_workers=opts.jobs) as ex:
            futures = [ex.submit(task, s) for s in pending]
            try:
                for fut in cf.as_completed(futures):
                    done.append(finish(fut.result()))
            except KeyboardInterrupt:
                log.warning("interrupted: stopping the running submissions; graded ones are kept, rerun to resume")
                for fut in futures:
                    fut.cancel()
                pool.kill_all()
                raise
    write_csv(opts.out, test_ids)
    done.sort(key=lambda r: r.student)
    text = summary(done, time.monotonic() - t_start, len(done) - kept)
    for line in text.splitlines():
        log.info("%s", line)
    log.info("grades in %s", opts.out / "grades.csv")
    return done
