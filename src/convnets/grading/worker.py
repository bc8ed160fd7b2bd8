"""Grade one submission in its own course folder: ``python -m convnets.grading.worker JOB.json``.

The parent (:mod:`convnets.grading.runner`) prepares a private course directory holding only
the assignment's gradebook (no other student's grades), the assignment's non-notebook files and
this student's (repaired) notebooks, then runs this module in a fresh process. It runs nbgrader's
own ``Autograde`` and ``GenerateFeedback`` there, with the kernel started through the sandbox
kernelspec (:mod:`convnets.grading.sandbox`), and writes ``result.json``: the points of every
test, the messages of the failed ones, and what went wrong (timeout, out of memory, crash).
The parent alone writes to the course's gradebook.
"""
from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from .preprocessors import KERNEL_DIED, OUTPUT_TRUNCATED

KERNEL_NAME = "convnets-sandbox"


def nbgrader_config(job: dict):
    """The traitlets Config of the private course (same grading rules as nbgrader_config.py)."""
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
    c.Autograde.autograde_preprocessors = [
        "convnets.grading.preprocessors.GuardedExecute",
        "convnets.grading.preprocessors.StderrIsNotFailure",
        "nbgrader.preprocessors.IgnorePattern",
        "nbconvert.preprocessors.ClearMetadataPreprocessor",
        "nbgrader.preprocessors.LimitOutput",
        "nbgrader.preprocessors.SaveAutoGrades",
        "nbgrader.preprocessors.AssignLatePenalties",
        "nbgrader.preprocessors.CheckCellMetadata",
    ]
    c.GuardedExecute.timeout = int(job["cell_timeout"])
    c.GuardedExecute.kernel_name = KERNEL_NAME
    c.GuardedExecute.max_output_chars = int(job["max_output_chars"])
    c.GuardedExecute.extra_arguments = []
    # in the kernel's own folder: the sandbox keeps that folder visible and hides /tmp
    c.KernelManager.connection_file = str(Path(job["kernel_dir"]) / "runtime" / "kernel.json")
    if job["level"] != "none":
        c.KernelManager.transport = "ipc"
        c.KernelManager.ip = job["ipc"]
    c.ClearOutput.enabled = True
    c.IgnorePattern.enabled = True
    c.IgnorePattern.pattern = r".*(UserWarning|DeprecationWarning|FutureWarning).*"
    c.OverwriteCells.add_missing_cells = True
    c.LimitOutput.max_lines = 200
    c.LimitOutput.max_traceback = 60
    c.GenerateFeedback.preprocessors = [
        "nbgrader.preprocessors.GetGrades",
        "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
        "convnets.grading.preprocessors.ScrubTracebacks",
        "nbgrader.preprocessors.ClearHiddenTests",
    ]
    c.HTMLExporter.template_name = "feedback"
    return c


def _events(nb) -> tuple[list[str], dict[str, str]]:
    """What went wrong while running ``nb`` (kinds, each with its first message under the key
    ``"kind:<kind>"`` of the second dict) and each test cell's failure message."""
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

    course = Path(job["course"])
    a, sid = job["assignment"], job["student"]
    cfg = nbgrader_config(job)
    coursedir = CourseDirectory(config=cfg)
    api = NbGraderAPI(coursedir=coursedir, config=cfg)
    result: dict = {"student": sid, "tests": {}, "kinds": [], "messages": {}, "error": None}
    ag = api.autograde(a, sid, force=True, create=True)
    result["log"] = ag.get("log", "")
    if not ag["success"]:
        result["error"] = (ag.get("error") or "autograde failed").strip().splitlines()[-1][:500]
        result["traceback"] = ag.get("error", "")
        return result
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
    fb = api.generate_feedback(a, sid, force=True)
    if not fb["success"]:
        result["feedback_error"] = (fb.get("error") or "generate_feedback failed").strip().splitlines()[-1][:500]
    return result


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    job_file = Path(argv[0])
    job = json.loads(job_file.read_text())
    out = job_file.parent / "result.json"
    try:
        result = grade(job)
    except Exception as e:  # anything unexpected still produces a record the parent can report
        result = {"student": job.get("student"), "tests": {}, "kinds": [], "messages": {},
                  "error": f"{type(e).__name__}: {e}"[:500], "traceback": traceback.format_exc()}
    # nbgrader's own log and any traceback go to logs/STUDENT.log (this process's output)
    print(result.get("log", ""))
    if result.get("traceback"):
        print(result["traceback"])
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=str))
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
