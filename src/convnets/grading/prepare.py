"""The released assignment (built once per output folder) and each student's private course folder.

:func:`build_template` releases the assignment with nbgrader's ``generate_assignment`` into
``OUT/.grader/template`` and creates ``OUT/gradebook.db``; :func:`prepare` parses and repairs one
submission (:mod:`.sanitize`, :mod:`.recover`) and lays out the folder a worker grades it in,
with the sandbox's instructions for its kernel (:mod:`.sandbox`).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import sandbox
from .collect import Submission, pick_notebooks
from .options import Options, Record
from .sanitize import NotANotebook, WrongAssignment, parse, reference_imports, repair

log = logging.getLogger("convnets.grading")


@dataclass
class Template:
    """The assignment as released, built once per output folder."""

    root: Path
    notebooks: dict[str, nbformat.NotebookNode]      # name -> released notebook
    tests: list[tuple[str, str, float]] = field(default_factory=list)  # (notebook, grade_id, points)


def kernel_threads(jobs: int, cores: int | None = None) -> int:
    """CPU threads for each student's kernel when ``jobs`` kernels run at once: an equal share of
    the cores (at least one). Without it every kernel's torch would start one thread per core, and
    ``jobs`` kernels would fight over the same cores (oversubscription slows all of them)."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, jobs))


def nbgrader_env() -> dict:
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
    src = (opts.course / opts.source_directory / opts.assignment).resolve()
    if not src.is_dir() or not list(src.glob("*.ipynb")):
        raise FileNotFoundError(f"no source notebooks in {src}: pass --course, the folder that holds "
                                f"{opts.source_directory}/{opts.assignment}/")
    root = opts.out / ".grader" / "template"
    digest = _tree_digest(src)
    stamp = root / "source.sha256"
    if not (stamp.exists() and stamp.read_text() == digest):
        from nbgrader.apps.api import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory
        from traitlets.config import Config

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
        os.environ.update(nbgrader_env())
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
    tmpl = load_template(root, opts.assignment)
    master = opts.out / "gradebook.db"
    if not master.exists():
        shutil.copy(root / "gradebook.db", master)
    elif (opts.out / ".grader" / "gradebook.source.sha256").exists() and \
            (opts.out / ".grader" / "gradebook.source.sha256").read_text() != digest:
        log.warning("the assignment's source changed since %s was created: its test list may be stale "
                    "(grade into a new --out to start afresh)", master)
    (opts.out / ".grader" / "gradebook.source.sha256").write_text(digest)
    (opts.out / ".grader" / "run.json").write_text(json.dumps(
        {"assignment": opts.assignment, "course_id": opts.course_id}, indent=1))
    return tmpl


def load_template(root: Path, assignment: str) -> Template:
    """The released notebooks under ``root/release/assignment`` and their tests."""
    notebooks = {p.stem: nbformat.read(str(p), as_version=4)
                 for p in sorted((root / "release" / assignment).glob("*.ipynb"))}
    tests = []
    for name, nb in notebooks.items():
        for cell in nb.cells:
            md = cell.metadata.get("nbgrader", {})
            if md.get("grade"):
                tests.append((name, md["grade_id"], float(md.get("points", 0))))
    return Template(root, notebooks, tests)


def new_record(sub: Submission, status: str, reason: str = "", notes: list[str] | None = None) -> Record:
    return Record(student=sub.student, status=status, reason=reason, notes=list(notes or []),
                  digest=sub.digest(), files=[f.path for f in sub.files])


def prepare(sub: Submission, tmpl: Template, opts: Options, level: str,
            launcher: list[str] | None = None) -> tuple[dict | None, Record]:
    """Parse and repair the student's notebooks and lay out the private course folder.

    Returns ``(job, record)``: ``job`` is None when there is nothing to run (the record then says
    why: not a notebook, another assignment). ``launcher``: see :func:`sandbox.write_kernelspec`.
    """
    chosen, notes = pick_notebooks(sub, list(tmpl.notebooks))
    if not chosen:
        found = ", ".join(f.path for f in sub.files) or "nothing"
        return None, new_record(sub, "not_a_notebook", f"no .ipynb file in the submission (found: {found})", notes)
    repaired = {}
    for name, f in chosen.items():
        try:
            nb, n1 = parse(f.data, f.size)
            nb, n2 = repair(nb, tmpl.notebooks[name])
        except NotANotebook as e:
            if len(tmpl.notebooks) == 1:
                return None, new_record(sub, "not_a_notebook", f"{f.path}: {e}", notes)
            notes.append(f"{f.path} skipped (not a notebook: {e})")
            continue
        except WrongAssignment as e:
            return None, new_record(sub, "failed", f"{f.path}: {e}", notes)
        notes += n1 + n2
        refs = reference_imports(nb)
        if refs:
            notes.append("FLAG: imports the library's reference implementation in a solution cell: " + ", ".join(refs))
        repaired[name] = nb
    if not repaired:
        return None, new_record(sub, "not_a_notebook", "none of the files is a readable notebook", notes)
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
    hide = [opts.course, opts.out, opts.submissions, Path.home(), Path("/tmp"), Path("/var/tmp")]
    keep = [p for p in sandbox.python_paths()
            if not any(h == p or str(h).startswith(str(p).rstrip("/") + "/") for h in hide)]
    spec = sandbox.write_spec(kdir / "spec.json", level=level, kernel_dir=kdir, hide=hide, keep=keep,
                              memory_bytes=opts.memory, max_file_bytes=opts.max_file_bytes,
                              threads=kernel_threads(opts.jobs))
    sandbox.write_kernelspec(work / "jupyter", "convnets-sandbox", level, spec, launcher=launcher)
    (opts.out / "logs").mkdir(exist_ok=True)
    job = {"course": str(work), "course_id": opts.course_id, "assignment": opts.assignment,
           "student": sub.student, "cell_timeout": opts.cell_timeout, "level": level,
           "max_output_chars": opts.max_output_chars, "kernel_dir": str(kdir),
           "log_file": str(opts.out / "logs" / f"{sub.student}.log"),
           "env": {"JUPYTER_PATH": str(work / "jupyter"), "JUPYTER_RUNTIME_DIR": str(kdir / "runtime")}}
    if level != "none":
        job["ipc"] = str(kdir / "ipc" / "k")
    (work / "job.json").write_text(json.dumps(job, indent=1))
    return job, new_record(sub, "graded", "", notes)
