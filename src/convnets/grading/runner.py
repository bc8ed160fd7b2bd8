"""The instructor's grading run: collect, repair, grade in parallel and isolated, report.

See ``docs/instructors.md`` for the whole workflow. Layout of ``--out``::

    OUT/grades.csv                  a row per student: status, reason, total, points per test, notes
    OUT/gradebook.db                nbgrader's gradebook (written by this process only)
    OUT/feedback/STUDENT/NB.html    feedback to return: summary table + the graded notebook,
                                    hidden tests removed
    OUT/autograded/STUDENT/NB.ipynb the executed notebook (instructor's copy, hidden tests in)
    OUT/results/STUDENT.json        the record behind each row (used to resume)
    OUT/logs/STUDENT.log            nbgrader's log for that student
    OUT/grading.log                 the run's log
    OUT/.grader/                    the released assignment and per-student working folders
"""
from __future__ import annotations

import concurrent.futures as cf
import csv
import hashlib
import html
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import sandbox
from .collect import Submission, collect, pick_notebooks
from .sanitize import NotANotebook, WrongAssignment, parse, reference_imports, repair

log = logging.getLogger("convnets.grading")

#: every status a row can have
STATUSES = ("graded", "failed", "timeout", "out_of_memory", "crashed", "not_a_notebook")


@dataclass
class Options:
    """Everything a grading run needs; the CLI fills it from its flags."""

    assignment: str
    submissions: Path
    out: Path
    course: Path = Path(".")
    source_directory: str = "solutions"
    course_id: str = "convnets"
    jobs: int = 0                       # 0: os.cpu_count()
    force: bool = False
    cell_timeout: int = 120             # seconds per cell
    timeout: int = 900                  # seconds per notebook (whole submission)
    memory: int = 4 * 2**30             # bytes of data segment per kernel
    max_file_bytes: int = 512 * 2**20   # largest file the kernel may write
    max_output_chars: int = 100_000     # output kept per cell
    isolation: str = "auto"             # auto, root, userns, none
    regexp: str | None = None
    keep_work: bool = False


@dataclass
class Template:
    """The assignment as released, built once per output folder."""

    root: Path
    notebooks: dict[str, nbformat.NotebookNode]      # name -> released notebook
    tests: list[tuple[str, str, float]] = field(default_factory=list)  # (notebook, grade_id, points)


def _nbgrader_env() -> dict:
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")  # nbgrader shells out to alembic
    env.setdefault("JUPYTER_PLATFORM_DIRS", "1")
    return env


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and ".ipynb_checkpoints" not in p.parts:
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def build_template(opts: Options) -> Template:
    """Release the assignment into ``OUT/.grader/template`` with nbgrader's generate_assignment
    (the gradebook there lists its notebooks, tests and points) and create ``OUT/gradebook.db``."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    src = (opts.course / opts.source_directory / opts.assignment).resolve()
    if not src.is_dir() or not list(src.glob("*.ipynb")):
        raise FileNotFoundError(f"no source notebooks in {src}: pass --course, the folder that holds "
                                f"{opts.source_directory}/{opts.assignment}/")
    root = opts.out / ".grader" / "template"
    digest = _tree_digest(src)
    stamp = root / "source.sha256"
    if not (stamp.exists() and stamp.read_text() == digest):
        shutil.rmtree(root, ignore_errors=True)
        (root / "source").mkdir(parents=True)
        shutil.copytree(src, root / "source" / opts.assignment,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        c = Config()
        c.CourseDirectory.root = str(root)
        c.CourseDirectory.course_id = opts.course_id
        c.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
        c.Exchange.root = str(root / "exchange")  # unused; silences nbgrader's check of /usr/local/share
        (root / "exchange").mkdir()
        old = dict(os.environ)
        os.environ.update(_nbgrader_env())
        try:
            api = NbGraderAPI(coursedir=CourseDirectory(config=c), config=c)
            res = api.generate_assignment(opts.assignment, force=True, create=True)
        finally:
            os.environ.clear()
            os.environ.update(old)
        if not res["success"]:
            raise RuntimeError(f"nbgrader generate_assignment failed:\n{res.get('error') or res.get('log')}")
        stamp.write_text(digest)
        log.info("released %s from %s into %s", opts.assignment, src, root)
    notebooks = {p.stem: nbformat.read(str(p), as_version=4)
                 for p in sorted((root / "release" / opts.assignment).glob("*.ipynb"))}
    tests = []
    for name, nb in notebooks.items():
        for cell in nb.cells:
            md = cell.metadata.get("nbgrader", {})
            if md.get("grade"):
                tests.append((name, md["grade_id"], float(md.get("points", 0))))
    master = opts.out / "gradebook.db"
    if not master.exists():
        shutil.copy(root / "gradebook.db", master)
    elif (opts.out / ".grader" / "gradebook.source.sha256").exists() and \
            (opts.out / ".grader" / "gradebook.source.sha256").read_text() != digest:
        log.warning("the assignment's source changed since %s was created: its test list may be stale "
                    "(grade into a new --out to start afresh)", master)
    (opts.out / ".grader" / "gradebook.source.sha256").write_text(digest)
    return Template(root, notebooks, tests)


# --------------------------------------------------------------------------------------------


def _record(sub: Submission, status: str, reason: str = "", notes: list[str] | None = None, **kw) -> dict:
    return {"student": sub.student, "status": status, "reason": reason, "notes": notes or [],
            "digest": sub.digest(), "files": [f.path for f in sub.files], "tests": {},
            "total": 0.0, "max_total": 0.0, **kw}


def prepare(sub: Submission, tmpl: Template, opts: Options, level: str) -> tuple[dict | None, dict]:
    """Parse and repair the student's notebooks and lay out the private course folder.

    Returns ``(job, record)``: ``job`` is None when there is nothing to run (the record then says
    why: not a notebook, another assignment).
    """
    chosen, notes = pick_notebooks(sub, list(tmpl.notebooks))
    if not chosen:
        found = ", ".join(f.path for f in sub.files) or "nothing"
        return None, _record(sub, "not_a_notebook", f"no .ipynb file in the submission (found: {found})", notes)
    repaired = {}
    for name, f in chosen.items():
        try:
            nb, n1 = parse(f.data, f.size)
            nb, n2 = repair(nb, tmpl.notebooks[name])
        except NotANotebook as e:
            if len(tmpl.notebooks) == 1:
                return None, _record(sub, "not_a_notebook", f"{f.path}: {e}", notes)
            notes.append(f"{f.path} skipped (not a notebook: {e})")
            continue
        except WrongAssignment as e:
            return None, _record(sub, "failed", f"{f.path}: {e}", notes)
        notes += n1 + n2
        refs = reference_imports(nb)
        if refs:
            notes.append("FLAG: imports the library's reference implementation in a solution cell: " + ", ".join(refs))
        repaired[name] = nb
    if not repaired:
        return None, _record(sub, "not_a_notebook", "none of the files is a readable notebook", notes)
    work = (opts.out / ".grader" / "work" / sub.student).resolve()
    shutil.rmtree(work, ignore_errors=True)
    (work / "source" / opts.assignment).mkdir(parents=True)
    shutil.copy(tmpl.root / "gradebook.db", work / "gradebook.db")
    src = tmpl.root / "source" / opts.assignment
    for p in src.rglob("*"):
        if p.is_file() and p.suffix != ".ipynb":
            dest = work / "source" / opts.assignment / p.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, dest)
    sub_dir = work / "submitted" / sub.student / opts.assignment
    sub_dir.mkdir(parents=True)
    for name, nb in repaired.items():
        nbformat.write(nb, str(sub_dir / f"{name}.ipynb"))
    # the kernel's own folder: a short path (Unix socket paths are limited to 107 bytes)
    kdir = Path(tempfile.mkdtemp(prefix="cgk-"))
    for d in ("ipc", "runtime", "home", "tmp"):
        (kdir / d).mkdir()
    hide = [opts.course.resolve(), opts.out.resolve(), Path(opts.submissions).resolve(),
            Path.home(), Path("/tmp"), Path("/var/tmp")]
    keep = [p for p in sandbox.python_paths()
            if not any(h == p or str(h).startswith(str(p).rstrip("/") + "/") for h in hide)]
    spec = sandbox.write_spec(kdir / "spec.json", level=level, kernel_dir=kdir, hide=hide, keep=keep,
                              memory_bytes=opts.memory, max_file_bytes=opts.max_file_bytes)
    sandbox.write_kernelspec(work / "jupyter", "convnets-sandbox", level, spec)
    job = {"course": str(work), "course_id": opts.course_id, "assignment": opts.assignment,
           "student": sub.student, "cell_timeout": opts.cell_timeout, "level": level,
           "max_output_chars": opts.max_output_chars, "kernel_dir": str(kdir)}
    if level != "none":
        job["ipc"] = str(kdir / "ipc" / "k")
    (work / "job.json").write_text(json.dumps(job, indent=1))
    return job, _record(sub, "graded", "", notes)


def _kill_kernel(kdir: Path) -> None:
    """Kill the kernel started for this submission if it outlived its worker (by its pid file)."""
    pid_file = kdir / "kernel.pid"
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if str(kdir).encode() in cmdline:  # it is still our kernel, not a recycled pid
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


class Runner:
    """Grades every submission of one assignment; see :func:`grade_all`."""

    def __init__(self, opts: Options):
        self.opts = opts
        self.procs: dict[str, subprocess.Popen] = {}
        self.lock = threading.Lock()
        self.stopping = False

    def run_one(self, job: dict, record: dict) -> dict:
        """Run the worker for one prepared submission; fill ``record`` from its result."""
        opts = self.opts
        work, kdir = Path(job["course"]), Path(job["kernel_dir"])
        t0 = time.time()
        env = _nbgrader_env()
        env.update(JUPYTER_PATH=str(work / "jupyter"), JUPYTER_RUNTIME_DIR=str(kdir / "runtime"),
                   MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
        (opts.out / "logs").mkdir(exist_ok=True)
        logf = open(opts.out / "logs" / f"{job['student']}.log", "w")
        timed_out = False
        try:
            proc = subprocess.Popen([sys.executable, "-m", "convnets.grading.worker", str(work / "job.json")],
                                    cwd=work, env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
            with self.lock:
                self.procs[job["student"]] = proc
            try:
                proc.wait(timeout=opts.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        finally:
            with self.lock:
                self.procs.pop(job["student"], None)
            _kill_kernel(kdir)
            logf.close()
        record["seconds"] = round(time.time() - t0, 2)
        result_file = work / "result.json"
        result = json.loads(result_file.read_text()) if result_file.exists() else None
        if timed_out:
            record.update(status="timeout", reason=f"the notebook ran longer than {opts.timeout} s and was stopped")
        elif result is None:
            record.update(status="failed", reason=f"the grader's worker ended with status {proc.returncode} "
                                                  f"(see logs/{job['student']}.log)")
        elif result.get("error"):
            record.update(status="failed", reason=f"nbgrader: {result['error']}")
        else:
            kinds = result.get("kinds", [])
            msgs = result.get("messages", {})
            for kind in ("crashed", "timeout", "out_of_memory"):
                if kind in kinds:
                    reason = msgs.get(f"kind:{kind}", kind)
                    if kind == "timeout":
                        reason = f"a cell ran longer than {opts.cell_timeout} s and was interrupted"
                    record.update(status=kind, reason=reason)
                    break
            if "output_truncated" in kinds:
                record["notes"].append(f"output cut at {opts.max_output_chars:,} characters per cell")
            for gid, t in result.get("tests", {}).items():
                score = float(t["score"] or 0.0)
                record["tests"][gid] = {"score": score, "max": float(t["max"]),
                                        "passed": score >= float(t["max"]) and float(t["max"]) > 0,
                                        "message": msgs.get(gid, "")}
        # the instructor's copy of the executed notebook and the student's feedback
        sid, a = job["student"], job["assignment"]
        for kind, pattern in (("autograded", "*.ipynb"), ("feedback", "*.html")):
            dest = opts.out / kind / sid
            shutil.rmtree(dest, ignore_errors=True)
            for p in sorted((work / kind / sid / a).glob(pattern)):
                dest.mkdir(parents=True, exist_ok=True)
                shutil.copy(p, dest / p.name)
        if not opts.keep_work:
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(kdir, ignore_errors=True)
        return record


def _totals(record: dict, tmpl: Template) -> None:
    record["max_total"] = sum(p for _, _, p in tmpl.tests)
    for _, gid, pts in tmpl.tests:
        record["tests"].setdefault(gid, {"score": 0.0, "max": pts, "passed": False,
                                         "message": "not graded: " + (record["reason"] or record["status"])})
    record["total"] = round(sum(t["score"] for t in record["tests"].values()), 4)


def merge_gradebook(record: dict, opts: Options) -> None:
    """Write one student's scores into ``OUT/gradebook.db`` (only this process writes it)."""
    import warnings

    from nbgrader.api import Gradebook, MissingEntry

    # nbgrader's update_or_create_submission triggers SQLAlchemy autoflush warnings (harmless)
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{(opts.out / 'gradebook.db').resolve()}", opts.course_id) as gb:
        warnings.simplefilter("ignore")
        gb.update_or_create_student(record["student"])
        sub = gb.update_or_create_submission(opts.assignment, record["student"])
        for snb in sub.notebooks:
            for g in snb.grades:
                t = record["tests"].get(g.name)
                try:
                    g.auto_score = float(t["score"]) if t else 0.0
                except (TypeError, MissingEntry):
                    g.auto_score = 0.0
                g.needs_manual_grade = False
        gb.db.commit()


def feedback_page(record: dict, opts: Options) -> None:
    """Put a summary (status, per test: passed or failed, points, message) atop each feedback
    file; write one for submissions that never ran."""
    rows = "".join(
        f"<tr><td><code>{html.escape(gid)}</code></td><td>{'passed' if t['passed'] else 'failed'}</td>"
        f"<td>{t['score']:g} / {t['max']:g}</td><td>{html.escape(t.get('message', ''))}</td></tr>"
        for gid, t in record["tests"].items())
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in record["notes"] if not n.startswith("FLAG"))
    summary = (
        '<div style="border:2px solid #444;padding:1em;margin:1em;font-family:sans-serif">'
        f"<h2>{html.escape(opts.assignment)}: {html.escape(record['student'])}</h2>"
        f"<p><b>Status:</b> {html.escape(record['status'])}"
        + (f" ({html.escape(record['reason'])})" if record["reason"] else "")
        + f"<br><b>Total:</b> {record['total']:g} / {record['max_total']:g}</p>"
        '<table border="1" cellpadding="4" style="border-collapse:collapse">'
        "<tr><th>test</th><th>result</th><th>points</th><th>message</th></tr>"
        f"{rows}</table>" + (f"<p>Notes:</p><ul>{notes}</ul>" if notes else "") + "</div>")
    dest = opts.out / "feedback" / record["student"]
    pages = sorted(dest.glob("*.html")) if dest.exists() else []
    if not pages:
        dest.mkdir(parents=True, exist_ok=True)
        (dest / f"{opts.assignment}.html").write_text(
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(opts.assignment)}</title>"
            f"</head><body>{summary}</body></html>")
        return
    for page in pages:
        text = page.read_text()
        i = text.find("<body")
        j = text.find(">", i) + 1 if i >= 0 else 0
        page.write_text(text[:j] + summary + text[j:])


def write_csv(opts: Options, tmpl: Template) -> Path:
    """``OUT/grades.csv`` from every record in ``OUT/results`` (rewritten after each student)."""
    records = [json.loads(p.read_text()) for p in sorted((opts.out / "results").glob("*.json"))]
    test_ids = [gid for _, gid, _ in tmpl.tests]
    path = opts.out / "grades.csv"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["student", "status", "reason", "total", "max", *test_ids, "flagged", "notes", "files"])
        for r in records:
            flagged = "; ".join(n for n in r["notes"] if n.startswith("FLAG"))
            w.writerow([r["student"], r["status"], r["reason"], f"{r['total']:g}", f"{r['max_total']:g}",
                        *[f"{r['tests'].get(g, {}).get('score', 0):g}" for g in test_ids], flagged,
                        "; ".join(n for n in r["notes"] if not n.startswith("FLAG")), "; ".join(r["files"])])
    tmp.replace(path)
    return path


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


def grade_all(opts: Options) -> list[dict]:
    """Grade every submission in ``opts.submissions``; return the records (one per student)."""
    opts.out = Path(opts.out).resolve()
    opts.course = Path(opts.course).resolve()
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


def _grade_all(opts: Options) -> list[dict]:
    level = resolve_level(opts.isolation)
    tmpl = build_template(opts)
    subs, orphans = collect(Path(opts.submissions), opts.assignment, opts.regexp)
    for o in orphans:
        log.warning("no student id in %s: ignored (name files STUDENT/... or STUDENT_%s.ipynb, or pass --regexp)",
                    o, opts.assignment)
    log.info("%d submissions of %s in %s", len(subs), opts.assignment, opts.submissions)
    todo = []
    done: list[dict] = []
    for sid, sub in subs.items():
        rec_file = opts.out / "results" / f"{sid}.json"
        if rec_file.exists() and not opts.force:
            old = json.loads(rec_file.read_text())
            if old.get("digest") == sub.digest():
                log.info("%s: already graded (%s, %g), skipped; --force regrades", sid, old["status"], old["total"])
                done.append(old)
                continue
        todo.append(sub)
    runner = Runner(opts)
    jobs = opts.jobs or os.cpu_count() or 1

    def finish(record: dict) -> dict:
        _totals(record, tmpl)
        record["graded_at"] = time.strftime("%Y-%m-%d %H:%M:%S")
        merge_gradebook(record, opts)
        feedback_page(record, opts)
        rec_file = opts.out / "results" / f"{record['student']}.json"
        rec_file.with_suffix(".tmp").write_text(json.dumps(record, indent=1))
        rec_file.with_suffix(".tmp").replace(rec_file)
        write_csv(opts, tmpl)
        log.info("%s: %s%s, %g / %g", record["student"], record["status"],
                 f" ({record['reason']})" if record["reason"] else "", record["total"], record["max_total"])
        for n in record["notes"]:
            log.info("%s: note: %s", record["student"], n)
        return record

    def task(sub: Submission) -> dict:
        try:
            job, record = prepare(sub, tmpl, opts, level)
            if job is None:
                return record
            return runner.run_one(job, record)
        except Exception as e:  # never let one submission stop the others
            log.exception("%s: grading failed", sub.student)
            return _record(sub, "failed", f"grader error: {type(e).__name__}: {e}")

    with cf.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(task, s) for s in todo]
        try:
            for fut in cf.as_completed(futures):
                done.append(finish(fut.result()))
        except KeyboardInterrupt:
            log.warning("interrupted: stopping the running submissions; graded ones are kept, rerun to resume")
            for fut in futures:
                fut.cancel()
            with runner.lock:
                for p in runner.procs.values():
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except OSError:
                        pass
            raise
    write_csv(opts, tmpl)
    counts: dict[str, int] = {}
    for r in done:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    log.info("done: %s; grades in %s", ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing",
             opts.out / "grades.csv")
    return sorted(done, key=lambda r: r["student"])
