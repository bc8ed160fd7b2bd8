"""Grade submissions in their own course folders: ``python -m convnets.grading.worker``.

The parent (:mod:`convnets.grading.pool`) prepares, for each student, a private course directory
holding only the assignment's gradebook (no other student's grades), the assignment's
non-notebook files and this student's (repaired) notebooks, with a ``job.json``. This module runs
nbgrader's own ``Autograde`` and ``GenerateFeedback`` there, with the kernel started through the
sandbox kernelspec (:mod:`convnets.grading.sandbox`), and writes ``result.json``: the points of
every test, the messages of the failed ones, what went wrong (timeout, out of memory, crash) and
the seconds of each phase. The parent alone writes to the course's gradebook.

Two ways to run it:

- ``worker JOB.json``: one submission, then exit (``--fresh-processes``);
- ``worker --serve``: a long-lived worker that imports nbgrader once and grades the jobs whose
  paths arrive on its standard input, one per line, answering ``@@done PATH`` on the descriptor
  that was its standard output (its own standard output and error go to each student's log).
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

from . import rules

KERNEL_NAME = "convnets-sandbox"
_T0 = time.perf_counter()


def nbgrader_config(job: dict):
    """The traitlets Config of the private course: the course's rules (:mod:`.rules`), plus where
    this course, its gradebook and the sandboxed kernel are."""
    from traitlets.config import Config

    course = Path(job["course"])
    c = Config()
    c.CourseDirectory.root = str(course)
    c.CourseDirectory.course_id = job["course_id"]
    c.CourseDirectory.source_directory = "source"
    c.CourseDirectory.release_directory = "release"
    c.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    c.Exchange.root = str(course / "exchange")  # unused; silences nbgrader's check of /usr/local/share
    (course / "exchange").mkdir(exist_ok=True)
    rules.apply(c, cell_timeout=int(job["cell_timeout"]), max_output_chars=int(job["max_output_chars"]))
    c.GuardedExecute.kernel_name = KERNEL_NAME
    c.GuardedExecute.extra_arguments = []
    # in the kernel's own folder: the sandbox keeps that folder visible and hides /tmp
    c.KernelManager.connection_file = str(Path(job["kernel_dir"]) / "runtime" / "kernel.json")
    if job["level"] != "none":
        c.KernelManager.transport = "ipc"
        c.KernelManager.ip = job["ipc"]
    return c


def _events(nb) -> tuple[list[str], dict[str, str]]:
    """What went wrong while running ``nb`` (kinds, each with its first message under the key
    ``"kind:<kind>"`` of the second dict) and each test cell's failure message."""
    from .preprocessors import KERNEL_DIED, OUTPUT_TRUNCATED

    kinds: list[str] = []
    messages: dict[str, str] = {}
    for cell in nb.cells:
        md = cell.metadata.get("nbgrader", {})
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                ename = out.get("ename", "")
                kind = {KERNEL_DIED: "crashed", "CellTimeoutError": "timeout",
                        "MemoryError": "out_of_memory"}.get(ename)
                if kind and kind not in kinds:
                    kinds.append(kind)
                    messages[f"kind:{kind}"] = f"{ename}: {out.get('evalue', '')}"[:500]
                if md.get("grade") and md.get("grade_id") not in messages:
                    messages[md["grade_id"]] = f"{ename}: {out.get('evalue', '')}"[:500]
            elif out.get("output_type") == "stream" and OUTPUT_TRUNCATED in out.get("text", "") \
                    and "output_truncated" not in kinds:
                kinds.append("output_truncated")
    return kinds, messages


def grade(job: dict) -> dict:
    """Autograde and generate feedback in ``job['course']``; return the result record."""
    import nbformat
    from nbgrader.api import Gradebook
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    from .preprocessors import GuardedExecute

    phases: dict[str, float] = {}
    course = Path(job["course"])
    a, sid = job["assignment"], job["student"]
    cfg = nbgrader_config(job)
    coursedir = CourseDirectory(config=cfg)
    api = NbGraderAPI(coursedir=coursedir, config=cfg)
    result: dict = {"student": sid, "tests": {}, "kinds": [], "messages": {}, "error": None, "phases": phases}
    GuardedExecute.timings = {}
    t0 = time.perf_counter()
    ag = api.autograde(a, sid, force=True, create=True)
    autograde = time.perf_counter() - t0
    run = {k: v for k, v in GuardedExecute.timings.items() if not k.startswith("_")}
    phases["kernel_start"] = run.get("kernel_start", 0.0)
    phases["first_cell"] = run.get("first_cell", 0.0)
    phases["execution"] = run.get("execution", 0.0) - phases["first_cell"]
    # the rest of autograde: gradebook look-ups and writes, the sanitising pass, saving grades
    phases["gradebook"] = autograde - sum(run.get(k, 0.0) for k in ("kernel_start", "execution"))
    result["log"] = ag.get("log", "")
    if not ag["success"]:
        result["error"] = (ag.get("error") or "autograde failed").strip().splitlines()[-1][:500]
        result["traceback"] = ag.get("error", "")
        return result
    t0 = time.perf_counter()
    for nb_path in sorted((course / "autograded" / sid / a).glob("*.ipynb")):
        nb = nbformat.read(str(nb_path), as_version=4)
        kinds, messages = _events(nb)
        result["kinds"] += [k for k in kinds if k not in result["kinds"]]
        result["messages"].update(messages)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", job["course_id"]) as gb:
        sub = gb.find_submission(a, sid)
        for snb in sub.notebooks:
            for g in snb.grades:
                result["tests"][g.name] = {"notebook": snb.name, "score": g.score, "max": g.max_score,
                                           "needs_manual_grade": bool(g.needs_manual_grade)}
    phases["gradebook"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    fb = api.generate_feedback(a, sid, force=True)
    phases["feedback"] = time.perf_counter() - t0
    if not fb["success"]:
        result["feedback_error"] = (fb.get("error") or "generate_feedback failed").strip().splitlines()[-1][:500]
    return result


def run_job(job_file: Path) -> dict:
    """Grade the job in ``job_file``; write ``result.json`` beside it (always); return it."""
    job = json.loads(job_file.read_text())
    out = job_file.parent / "result.json"
    env = job.get("env", {})
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        result = grade(job)
    except Exception as e:  # anything unexpected still produces a record the parent can report
        result = {"student": job.get("student"), "tests": {}, "kinds": [], "messages": {},
                  "error": f"{type(e).__name__}: {e}"[:500], "traceback": traceback.format_exc()}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    # nbgrader's own log and any traceback go to logs/STUDENT.log (this process's output)
    print(result.get("log", ""))
    if result.get("traceback"):
        print(result["traceback"])
    sys.stdout.flush()
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=str))
    tmp.replace(out)
    return result


def _imports() -> float:
    """Import what every job needs, once; return the seconds it took."""
    t0 = time.perf_counter()
    import nbformat  # noqa: F401
    import nbgrader.api  # noqa: F401
    import nbgrader.apps.api  # noqa: F401
    from nbgrader.converters import Autograde, GenerateFeedback  # noqa: F401

    from . import preprocessors  # noqa: F401
    return time.perf_counter() - t0


def serve() -> int:
    """Grade the jobs named on stdin, one per line, until stdin closes (see the module docstring)."""
    answer = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    started = float(os.environ.get("CONVNETS_GRADER_SPAWNED", "0") or 0)
    process_start = max(time.time() - started - (time.perf_counter() - _T0), 0.0) if started else 0.0
    imports = _imports()
    first = True
    for line in sys.stdin:
        path = line.strip()
        if not path:
            continue
        job_file = Path(path)
        log_file = json.loads(job_file.read_text()).get("log_file")
        if log_file:
            fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(fd)
        result = run_job(job_file)
        if first:  # the one-off costs of this worker, charged to its first job
            result["phases"] = {"process_start": process_start, "imports": imports, **result.get("phases", {})}
            job_file.parent.joinpath("result.json").write_text(json.dumps(result, indent=1, default=str))
            first = False
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        answer.write(f"@@done {path}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--serve"]:
        return serve()
    started = float(os.environ.get("CONVNETS_GRADER_SPAWNED", "0") or 0)
    process_start = max(time.time() - started - (time.perf_counter() - _T0), 0.0) if started else 0.0
    imports = _imports()
    job_file = Path(argv[0])
    result = run_job(job_file)
    result["phases"] = {"process_start": process_start, "imports": imports, **result.get("phases", {})}
    job_file.parent.joinpath("result.json").write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
