"""nbgrader preprocessors that make autograding robust (see ``docs/instructors.md``).

- :class:`GuardedExecute`: nbgrader's ``Execute`` that survives a dying kernel (``os._exit``,
  a segfault, the OOM killer): the cells already run keep their outputs, every later code cell
  gets an error output saying why it did not run, and grading goes on, so the submission gets
  a grade and a reason instead of vanishing. It also caps the output a cell may produce
  (a single 20 MB line or 100 MB of prints is cut, with a note, while it streams in).
- :class:`StderrIsNotFailure`: nbgrader scores a test cell zero when anything reaches stderr
  (a torch ``UserWarning``); here only an error fails a test, stderr is kept as plain output.
- :class:`ScrubTracebacks`: in the feedback, a test cell's traceback quotes the test's source
  lines, hidden tests included; this keeps only ``ErrorName: message``.
"""
from __future__ import annotations

import time
import typing as t

from nbclient.exceptions import DeadKernelError
from nbclient.util import run_sync
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Integer

#: ename of the error output that GuardedExecute writes when the kernel dies
KERNEL_DIED = "KernelDied"
#: ename of the note added where output was cut
OUTPUT_TRUNCATED = "[output truncated by the grader]"


def _is_test_cell(cell: NotebookNode) -> bool:
    md = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and bool(md.get("grade")) and not md.get("solution")


def describe_exit(returncode: int | None) -> str:
    """A sentence for a dead kernel's exit status (negative: killed by that signal)."""
    import signal

    if returncode is None:
        return "the kernel stopped responding"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        why = {"SIGSEGV": "a segmentation fault", "SIGKILL": "killed (most often: out of memory)",
               "SIGABRT": "aborted", "SIGBUS": "a bus error"}.get(name, name)
        return f"the kernel died: {why} ({name})"
    return f"the kernel exited with status {returncode} (os._exit or sys.exit in the notebook?)"


class GuardedExecute(Execute):
    """``nbgrader.preprocessors.Execute`` that records a dead kernel and caps cell output."""

    max_output_chars = Integer(
        100_000, help="Most characters of output kept per cell (text and encoded images)."
    ).tag(config=True)

    #: seconds of the last run: ``kernel_start`` (until the kernel answers), ``first_cell`` (the
    #: notebook's first code cell, its imports), ``execution`` (every cell, and the shutdown)
    timings: t.ClassVar[dict[str, float]] = {}

    def preprocess(self, nb: NotebookNode, resources: t.Any = None, km: t.Any = None):
        self._death: str | None = None
        self._output_size: dict[int, int] = {}
        GuardedExecute.timings = self._timings = {"kernel_start": 0.0, "first_cell": 0.0}
        t0 = time.perf_counter()
        try:
            return super().preprocess(nb, resources, km)
        finally:
            self._timings["execution"] = time.perf_counter() - t0 - self._timings["kernel_start"]

    async def async_start_new_kernel(self, **kwargs: t.Any) -> None:
        t0 = time.perf_counter()
        try:
            return await super().async_start_new_kernel(**kwargs)
        finally:
            self._timings["kernel_start"] += time.perf_counter() - t0

    async def async_start_new_kernel_client(self):
        t0 = time.perf_counter()
        try:
            return await super().async_start_new_kernel_client()
        finally:
            self._timings["kernel_start"] += time.perf_counter() - t0

    start_new_kernel = run_sync(async_start_new_kernel)
    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    async def async_execute_cell(self, cell: NotebookNode, cell_index: int,
                                 execution_count: int | None = None, store_history: bool = True) -> NotebookNode:
        death = getattr(self, "_death", None)
        if death is not None:
            if cell.cell_type == "code" and cell.source.strip():
                cell.outputs = [self._error(KERNEL_DIED, f"not run: {death} in an earlier cell")]
            return cell
        t0 = time.perf_counter()
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        except DeadKernelError:
            returncode = None
            try:
                proc = self.km.provisioner.process  # type: ignore[union-attr]
                returncode = proc.wait(timeout=5) if hasattr(proc, "wait") else proc.poll()
            except Exception:  # the provisioner's process may be gone already
                pass
            self._death = describe_exit(returncode)
            self.log.error("Cell %d: %s", cell_index, self._death)
            cell.outputs = list(cell.get("outputs", [])) + [self._error(KERNEL_DIED, self._death + " in this cell")]
            return cell
        finally:
            timings = getattr(self, "_timings", None)
            if timings is not None and cell.cell_type == "code" and not timings.get("_first_done"):
                timings["first_cell"] = time.perf_counter() - t0
                timings["_first_done"] = 1.0

    # nbclient binds the sync wrapper to its own coroutine: rebind it to the override
    execute_cell = run_sync(async_execute_cell)

    @staticmethod
    def _error(ename: str, evalue: str) -> NotebookNode:
        return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                            traceback=[f"{ename}: {evalue}"])

    def output(self, outs: list[NotebookNode], msg: dict[str, t.Any], display_id: str | None,
               cell_index: int) -> NotebookNode | None:
        content = msg.get("content", {})
        size = len(content.get("text", "")) if msg["msg_type"] == "stream" else \
            sum(len(str(v)) for v in content.get("data", {}).values())
        sizes = getattr(self, "_output_size", None)
        if sizes is None:
            sizes = self._output_size = {}
        used = sizes.get(cell_index, 0)
        limit = self.max_output_chars
        if used >= limit:
            return None
        sizes[cell_index] = used + size
        if used + size > limit:
            keep = max(limit - used, 0)
            if msg["msg_type"] == "stream":
                msg = dict(msg, content=dict(content, text=content["text"][:keep] +
                                             f"\n{OUTPUT_TRUNCATED}: more than {limit:,} characters\n"))
            else:
                msg = dict(msg, msg_type="stream",
                           content={"name": "stdout", "text": f"{OUTPUT_TRUNCATED}: more than {limit:,} characters\n"})
        return super().output(outs, msg, display_id, cell_index)


class StderrIsNotFailure(NbGraderPreprocessor):
    """Turn stderr output of test cells into stdout, so only an error fails a test.

    nbgrader's ``determine_grade`` gives zero to a test cell with any stderr output: a torch
    ``UserWarning`` raised by correct student code would cost the points.
    """

    def preprocess_cell(self, cell: NotebookNode, resources: dict, cell_index: int):
        if _is_test_cell(cell):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream" and out.get("name") == "stderr":
                    out["name"] = "stdout"
        return cell, resources


class ScrubTracebacks(NbGraderPreprocessor):
    """In test cells, replace each traceback by its last line, ``ErrorName: message``.

    Run before ``ClearHiddenTests`` in ``GenerateFeedback``: IPython's traceback quotes the
    source lines around the failing assert, which may be hidden test lines.
    """

    def preprocess_cell(self, cell: NotebookNode, resources: dict, cell_index: int):
        if _is_test_cell(cell):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    out["traceback"] = [f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"]
        return cell, resources
