"""What a grading run writes from its records: ``grades.csv``, the gradebook, the feedback page,
``results/STUDENT.json``, the progress line and the summary; and ``convnets-grade merge``, which
combines the output folders of several shards into one (``docs/instructors.md``, "Many machines").
"""
from __future__ import annotations

import csv
import html
import json
import logging
import shutil
import sys
import time
from pathlib import Path

from .options import Record
from .prepare import load_template

log = logging.getLogger("convnets.grading")


def write_record(out: Path, record: Record) -> Path:
    """``OUT/results/STUDENT.json`` (atomically)."""
    path = out / "results" / f"{record.student}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record.to_dict(), indent=1))
    tmp.replace(path)
    return path


def read_records(out: Path) -> list[Record]:
    return [Record.from_dict(json.loads(p.read_text())) for p in sorted((Path(out) / "results").glob("*.json"))]


def write_csv(out: Path, test_ids: list[str]) -> Path:
    """``OUT/grades.csv`` from every record in ``OUT/results`` (rewritten after each student)."""
    path = out / "grades.csv"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["student", "status", "reason", "total", "max", *test_ids, "flagged", "notes", "files"])
        for r in read_records(out):
            w.writerow([r.student, r.status, r.reason, f"{r.total:g}", f"{r.max_total:g}",
                        *[f"{r.tests[g].score:g}" if g in r.tests else "0" for g in test_ids],
                        "; ".join(r.flagged), "; ".join(n for n in r.notes if not n.startswith("FLAG")),
                        "; ".join(r.files)])
    tmp.replace(path)
    return path


def merge_gradebook(record: Record, db: Path, assignment: str, course_id: str) -> None:
    """Write one student's scores into the gradebook ``db`` (only one process writes it)."""
    import warnings

    from nbgrader.api import Gradebook, MissingEntry

    # nbgrader's update_or_create_submission triggers SQLAlchemy autoflush warnings (harmless)
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{Path(db).resolve()}", course_id) as gb:
        warnings.simplefilter("ignore")
        gb.update_or_create_student(record.student)
        sub = gb.update_or_create_submission(assignment, record.student)
        for snb in sub.notebooks:
            for g in snb.grades:
                t = record.tests.get(g.name)
                try:
                    g.auto_score = float(t.score) if t else 0.0
                except (TypeError, MissingEntry):
                    g.auto_score = 0.0
                g.needs_manual_grade = False
        gb.db.commit()


def feedback_page(record: Record, out: Path, assignment: str) -> None:
    """Put a summary (status, per test: passed or failed, points, message) atop each feedback
    file; write one for submissions that never ran."""
    rows = "".join(
        f"<tr><td><code>{html.escape(gid)}</code></td><td>{'passed' if t.passed else 'failed'}</td>"
        f"<td>{t.score:g} / {t.max:g}</td><td>{html.escape(t.message)}</td></tr>"
        for gid, t in record.tests.items())
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in record.notes if not n.startswith("FLAG"))
    summary = (
        '<div style="border:2px solid #444;padding:1em;margin:1em;font-family:sans-serif">'
        f"<h2>{html.escape(assignment)}: {html.escape(record.student)}</h2>"
        f"<p><b>Status:</b> {html.escape(record.status)}"
        + (f" ({html.escape(record.reason)})" if record.reason else "")
        + f"<br><b>Total:</b> {record.total:g} / {record.max_total:g}</p>"
        '<table border="1" cellpadding="4" style="border-collapse:collapse">'
        "<tr><th>test</th><th>result</th><th>points</th><th>message</th></tr>"
        f"{rows}</table>" + (f"<p>Notes:</p><ul>{notes}</ul>" if notes else "") + "</div>")
    dest = out / "feedback" / record.student
    pages = sorted(dest.glob("*.html")) if dest.exists() else []
    if not pages:
        dest.mkdir(parents=True, exist_ok=True)
        (dest / f"{assignment}.html").write_text(
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(assignment)}</title>"
            f"</head><body>{summary}</body></html>")
        return
    for page in pages:
        text = page.read_text()
        i = text.find("<body")
        j = text.find(">", i) + 1 if i >= 0 else 0
        page.write_text(text[:j] + summary + text[j:])


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    """``[#####.....] 12/40  0:48 elapsed, ~1:52 left (4.0 s per submission)`` on stderr.

    On a terminal the line is redrawn in place; otherwise (a log file, a SLURM job) a line is
    printed at most every 10 % of the work. The estimate is the elapsed time per finished
    submission times the submissions left (it includes the parallelism actually achieved).
    """

    def __init__(self, total: int, enabled: bool = True, stream=None):
        self.total, self.done, self.enabled = total, 0, enabled and total > 0
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.t0 = time.monotonic()
        self._printed_at = -1

    def line(self) -> str:
        elapsed = time.monotonic() - self.t0
        width = 24
        fill = int(width * self.done / max(self.total, 1))
        text = f"[{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total}  {_clock(elapsed)} elapsed"
        if self.done:
            per = elapsed / self.done
            text += f", ~{_clock(per * (self.total - self.done))} left ({per:.1f} s per submission)"
        return text

    def step(self) -> None:
        self.done += 1
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r" + self.line() + ("\n" if self.done == self.total else ""))
            self.stream.flush()
        else:
            decile = self.done * 10 // self.total
            if decile != self._printed_at:
                self._printed_at = decile
                print(self.line(), file=self.stream, flush=True)


def summary(records: list[Record], seconds: float, graded_now: int) -> str:
    """The run's closing lines: counts per status, points, time."""
    counts: dict[str, int] = {}
    for r in records:
        counts[r.status] = counts.get(r.status, 0) + 1
    lines = [f"{len(records)} students: " + (", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "none")]
    if records:
        totals = sorted(r.total for r in records)
        top = records[0].max_total
        full = sum(1 for r in records if r.total >= top > 0)
        lines.append(f"points: mean {sum(totals) / len(totals):.2f} / {top:g}, median {totals[len(totals) // 2]:g}, "
                     f"full marks {full}, flagged {sum(1 for r in records if r.flagged)}")
    if graded_now:
        lines.append(f"graded {graded_now} now in {_clock(seconds)} ({seconds / graded_now:.1f} s per submission); "
                     f"{len(records) - graded_now} kept from an earlier run")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# convnets-grade merge


def merge(outs: list[Path], dest: Path) -> list[Record]:
    """Combine the output folders of several runs (shards) into ``dest``: records, ``grades.csv``,
    gradebook, feedback, autograded notebooks and logs. A student graded in two of them keeps the
    later record (a warning is logged). Returns the merged records."""
    outs = [Path(o).resolve() for o in outs]
    dest = Path(dest).resolve()
    runs = []
    for o in outs:
        info = o / ".grader" / "run.json"
        if not info.exists():
            raise FileNotFoundError(f"{o} is not a convnets-grade output folder (no .grader/run.json)")
        runs.append(json.loads(info.read_text()))
    if len({(r["assignment"], r["course_id"]) for r in runs}) != 1:
        raise ValueError("the folders grade different assignments: " + ", ".join(r["assignment"] for r in runs))
    digests = {(o / ".grader" / "gradebook.source.sha256").read_text() for o in outs}
    if len(digests) != 1:
        raise ValueError("the folders were graded from different versions of the assignment's source")
    assignment, course_id = runs[0]["assignment"], runs[0]["course_id"]
    if dest in outs:
        raise ValueError("--out must be a new folder, not one of the folders merged")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(outs[0] / ".grader" / "template", dest / ".grader" / "template", dirs_exist_ok=True)
    for name in ("gradebook.source.sha256", "run.json"):
        shutil.copy(outs[0] / ".grader" / name, dest / ".grader" / name)
    tmpl = load_template(dest / ".grader" / "template", assignment)
    db = dest / "gradebook.db"
    db.unlink(missing_ok=True)
    shutil.copy(tmpl.root / "gradebook.db", db)
    chosen: dict[str, tuple[Record, Path]] = {}
    for o in outs:
        for r in read_records(o):
            if r.student in chosen:
                old, where = chosen[r.student]
                log.warning("%s is in both %s and %s: kept the later grading", r.student, where, o)
                if old.graded_at >= r.graded_at:
                    continue
            chosen[r.student] = (r, o)
    for sid, (r, o) in sorted(chosen.items()):
        for kind in ("feedback", "autograded"):
            target = dest / kind / sid
            shutil.rmtree(target, ignore_errors=True)
            if (o / kind / sid).is_dir():
                shutil.copytree(o / kind / sid, target)
        if (o / "logs" / f"{sid}.log").exists():
            (dest / "logs").mkdir(exist_ok=True)
            shutil.copy(o / "logs" / f"{sid}.log", dest / "logs" / f"{sid}.log")
        write_record(dest, r)
        merge_gradebook(r, db, assignment, course_id)
    write_csv(dest, [gid for _, gid, _ in tmpl.tests])
    log.info("merged %d students from %d folders into %s", len(chosen), len(outs), dest)
    return [r for r, _ in (chosen[s] for s in sorted(chosen))]
