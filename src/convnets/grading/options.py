"""The grading run's options and the record kept for each student (``docs/instructors.md``).

:class:`Options` is what the command line fills in; :meth:`Options.validated` checks it once and
returns a resolved copy (absolute paths, the number of workers, the shard) that nothing changes
afterwards. :class:`Record` is the row of one student: what ``grades.csv``, the gradebook, the
feedback page and ``results/STUDENT.json`` are written from.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import rules

#: every status a row can have
STATUSES = ("graded", "failed", "timeout", "out_of_memory", "crashed", "not_a_notebook")
#: isolation levels a user may ask for
ISOLATION_CHOICES = ("auto", "root", "userns", "none")


def parse_shard(text: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"2/3"`` -> ``(2, 3)`` (shard K of N, 1 <= K <= N); None stays None."""
    if text is None or isinstance(text, tuple):
        shard = text
    else:
        try:
            k, n = (int(x) for x in str(text).split("/"))
        except ValueError:
            raise ValueError(f"--shard takes K/N, e.g. 1/4, not {text!r}") from None
        shard = (k, n)
    if shard is not None and not (shard[1] >= 1 and 1 <= shard[0] <= shard[1]):
        raise ValueError(f"--shard K/N needs 1 <= K <= N, got {shard[0]}/{shard[1]}")
    return shard


def shard_of(student: str, n: int) -> int:
    """The shard (1..n) a student id belongs to: a hash of the id, the same on every machine."""
    return int.from_bytes(hashlib.sha256(student.encode()).digest()[:8], "big") % n + 1


@dataclass(frozen=True)
class Options:
    """Everything a grading run needs; the CLI fills it from its flags."""

    assignment: str
    submissions: Path
    out: Path
    course: Path = Path(".")
    source_directory: str = "solutions"
    course_id: str = "convnets"
    jobs: int = 0                                   # 0: os.cpu_count()
    force: bool = False
    cell_timeout: int = rules.CELL_TIMEOUT          # seconds per cell
    timeout: int = 900                              # seconds per notebook (whole submission)
    memory: int = 4 * 2**30                         # bytes of data segment per kernel
    max_file_bytes: int = 512 * 2**20               # largest file the kernel may write
    max_output_chars: int = rules.MAX_OUTPUT_CHARS  # output kept per cell
    isolation: str = "auto"                         # auto, root, userns, none
    regexp: str | None = None
    keep_work: bool = False
    shard: tuple[int, int] | None = None            # (K, N): grade shard K of N
    fresh_processes: bool = False                   # one worker process and a cold kernel per student
    progress: bool = True                           # a progress bar on stderr

    def validated(self) -> "Options":
        """Check every option once; return a copy with absolute paths and a definite ``jobs``."""
        if not self.assignment or "/" in self.assignment:
            raise ValueError(f"not an assignment name: {self.assignment!r}")
        if self.jobs < 0:
            raise ValueError("--jobs must be 0 (all cores) or a positive number")
        for name in ("cell_timeout", "timeout", "max_output_chars"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name.replace('_', '-')} must be positive")
        if self.isolation not in ISOLATION_CHOICES:
            raise ValueError(f"--isolation must be one of {ISOLATION_CHOICES}")
        return dataclasses.replace(
            self, out=Path(self.out).resolve(), course=Path(self.course).resolve(),
            submissions=Path(self.submissions).resolve(), jobs=self.jobs or os.cpu_count() or 1,
            shard=parse_shard(self.shard))


@dataclass
class CellScore:
    """One test cell's outcome."""

    score: float
    max: float
    passed: bool = False
    message: str = ""


@dataclass
class Record:
    """One student's row: status, reason, points per test, notes, and what was graded."""

    student: str
    status: str
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    digest: str = ""
    files: list[str] = field(default_factory=list)
    tests: dict[str, CellScore] = field(default_factory=dict)
    total: float = 0.0
    max_total: float = 0.0
    seconds: float = 0.0
    graded_at: str = ""
    phases: dict[str, float] = field(default_factory=dict)   # seconds per phase (see worker)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")

    @property
    def flagged(self) -> list[str]:
        return [n for n in self.notes if n.startswith("FLAG")]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Record":
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        d["tests"] = {g: CellScore(**t) if isinstance(t, dict) else t for g, t in d.get("tests", {}).items()}
        return cls(**d)

    def finish(self, tests: list[tuple[str, str, float]]) -> "Record":
        """Give every test of the release a score (0 with the reason when it did not run); sum."""
        self.max_total = sum(p for _, _, p in tests)
        for _, gid, pts in tests:
            if gid not in self.tests:
                self.tests[gid] = CellScore(0.0, pts, False, "not graded: " + (self.reason or self.status))
        self.total = round(sum(t.score for t in self.tests.values()), 4)
        return self
