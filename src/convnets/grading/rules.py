"""The course's grading rules, defined once (``docs/instructors.md``, "One set of rules").

``nbgrader_config.py`` (what ``nbgrader autograde`` run by hand reads) and the grader's worker
(:mod:`convnets.grading.worker`) both call :func:`apply`, so a cell timeout, the stderr rule, the
output limits, the restored cells and the feedback's preprocessors (hidden tests removed,
tracebacks of test cells cut to their last line) cannot drift apart; ``tests/test_grading_rules.py``
loads both and compares them.

This module imports nothing heavy (traitlets' ``Config`` is passed in), so a config file can load it.
"""
from __future__ import annotations

from typing import Any

#: seconds a cell may run before it is interrupted (the grader's ``--cell-timeout`` default)
CELL_TIMEOUT = 120
#: characters of output kept per cell while it streams in (the grader's ``--max-output`` default)
MAX_OUTPUT_CHARS = 100_000
#: stderr lines matching this are dropped (a torch warning must not cost points)
IGNORE_PATTERN = r".*(UserWarning|DeprecationWarning|FutureWarning).*"
#: lines of a stream, and of a traceback, kept in the graded notebook
MAX_LINES = 200
MAX_TRACEBACK = 60

#: nbgrader's own list (nbgrader 0.9.6, ``Autograde.autograde_preprocessors``) with its
#: ``Execute`` replaced by one that survives a dying kernel and caps output, and stderr in a test
#: cell no longer scoring it zero (only an error does)
AUTOGRADE_PREPROCESSORS = [
    "convnets.grading.preprocessors.GuardedExecute",
    "convnets.grading.preprocessors.StderrIsNotFailure",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
#: the feedback a student receives: tracebacks of test cells cut to ``ErrorName: message``
#: (IPython quotes the source lines around a failing assert, which may be hidden), then the
#: hidden tests removed
FEEDBACK_PREPROCESSORS = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "convnets.grading.preprocessors.ScrubTracebacks",
    "nbgrader.preprocessors.ClearHiddenTests",
]


def apply(c: Any, *, cell_timeout: int = CELL_TIMEOUT, max_output_chars: int = MAX_OUTPUT_CHARS) -> Any:
    """Set the course's grading rules on a traitlets ``Config`` ``c`` (returned)."""
    c.ClearOutput.enabled = True                      # outputs saved in a submission are cleared
    c.IgnorePattern.enabled = True
    c.IgnorePattern.pattern = IGNORE_PATTERN
    c.OverwriteCells.add_missing_cells = True         # a deleted test cell comes back
    c.LimitOutput.max_lines = MAX_LINES
    c.LimitOutput.max_traceback = MAX_TRACEBACK
    c.Autograde.autograde_preprocessors = list(AUTOGRADE_PREPROCESSORS)
    c.GuardedExecute.timeout = int(cell_timeout)
    c.GuardedExecute.max_output_chars = int(max_output_chars)
    c.GenerateFeedback.preprocessors = list(FEEDBACK_PREPROCESSORS)
    return c


#: the (section, key) pairs :func:`apply` sets: what the agreement test compares
KEYS = [("ClearOutput", "enabled"), ("IgnorePattern", "enabled"), ("IgnorePattern", "pattern"),
        ("OverwriteCells", "add_missing_cells"), ("LimitOutput", "max_lines"),
        ("LimitOutput", "max_traceback"), ("Autograde", "autograde_preprocessors"),
        ("GuardedExecute", "timeout"), ("GuardedExecute", "max_output_chars"),
        ("GenerateFeedback", "preprocessors")]
