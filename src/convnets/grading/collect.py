"""Collecting submissions from a folder or an LMS zip (see ``docs/instructors.md``, "Collect").

Every file becomes a :class:`SubmittedFile` attached to a student id:

- ``STUDENT/anything/...``: the first folder names the student (nbgrader's
  ``submitted/STUDENT/ASSIGNMENT/NB.ipynb`` layout, and LMS downloads with one folder per
  student such as Moodle's ``Ann Lee_1234_assignsubmission_file_/``, whose id is the part
  before ``_assignsubmission``);
- a file at the top level: its name without the extension, without the assignment's name, and
  without a trailing ``_attemptN``/date part after a double underscore (``ann__00-warmup.ipynb``,
  ``ann_00-warmup.ipynb`` and ``ann.ipynb`` all belong to ``ann``);
- ``--regexp`` replaces both rules: a Python regular expression with a ``student_id`` group,
  matched against the path inside the folder or zip.

Hidden files, ``__MACOSX/`` and ``.ipynb_checkpoints/`` are skipped. Zip members are read in
memory, never extracted by their own names (a member called ``../../x`` cannot write outside).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

#: files larger than this are not read (recorded as "not a notebook: too large")
MAX_FILE_BYTES = 100 * 2**20


@dataclass
class SubmittedFile:
    """One file of a submission: where it came from, its bytes and its modification time."""

    path: str                 # path inside the submissions folder or zip (POSIX)
    data: bytes | None        # None when the file is larger than MAX_FILE_BYTES
    mtime: float              # seconds since the epoch
    size: int

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name


@dataclass
class Submission:
    """All the files one student handed in."""

    student: str
    files: list[SubmittedFile] = field(default_factory=list)

    def digest(self) -> str:
        """A hash of the submission's paths and contents: grading is redone when it changes."""
        h = hashlib.sha256()
        for f in sorted(self.files, key=lambda f: f.path):
            h.update(f.path.encode() + b"\0" + hashlib.sha256(f.data or b"").digest())
        return h.hexdigest()


def _skipped(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p in ("__MACOSX", ".ipynb_checkpoints") for p in parts)


def clean_id(raw: str) -> str:
    """A student id safe as a folder name: letters, digits, ``._-``; other runs become ``_``."""
    raw = raw.split("_assignsubmission")[0]
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", raw.strip()).strip("._-")
    return s[:100] or "unknown"


def student_of(path: str, assignment: str, regexp: re.Pattern | None = None) -> str | None:
    """The student id for a file at ``path`` (POSIX, relative), or None when it has none."""
    if regexp is not None:
        m = regexp.search(path)
        return clean_id(m.group("student_id")) if m else None
    parts = PurePosixPath(path).parts
    if len(parts) > 1:
        return clean_id(parts[0])
    stem = PurePosixPath(path).stem
    stem = stem.split("__")[0]
    for sep in ("_", "-", " ", "."):
        for cand in (sep + assignment, assignment + sep):
            stem = stem.replace(cand, "")
    if stem == assignment or not stem:
        return None
    return clean_id(stem)


def read_files(source: Path) -> list[SubmittedFile]:
    """Every regular file under a folder, or every member of a zip, with its bytes."""
    source = Path(source)
    out: list[SubmittedFile] = []
    if source.is_dir():
        for p in sorted(source.rglob("*")):
            rel = p.relative_to(source)
            if _skipped(rel.parts) or not p.is_file() or p.is_symlink():
                continue
            st = p.stat()
            data = p.read_bytes() if st.st_size <= MAX_FILE_BYTES else None
            out.append(SubmittedFile(rel.as_posix(), data, st.st_mtime, st.st_size))
    elif zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as zf:
            for info in zf.infolist():
                rel = PurePosixPath(info.filename.replace("\\", "/"))
                parts = tuple(p for p in rel.parts if p not in ("", ".", "..", "/"))
                if info.is_dir() or not parts or _skipped(parts):
                    continue
                data = zf.read(info) if info.file_size <= MAX_FILE_BYTES else None
                mtime = _dt.datetime(*info.date_time).timestamp()
                out.append(SubmittedFile("/".join(parts), data, mtime, info.file_size))
    elif source.exists():
        raise ValueError(f"{source} is neither a folder nor a zip file: pass the folder of "
                         "submissions or the zip your LMS gave you")
    else:
        raise FileNotFoundError(f"no submissions at {source}")
    return out


def collect(source: Path, assignment: str, regexp: str | None = None) -> tuple[dict[str, Submission], list[str]]:
    """Group the files under ``source`` by student.

    Returns the submissions by student id and the paths that matched no student (logged).
    """
    pattern = re.compile(regexp) if regexp else None
    if pattern is not None and "student_id" not in pattern.groupindex:
        raise ValueError("--regexp must have a named group (?P<student_id>...)")
    subs: dict[str, Submission] = {}
    orphans: list[str] = []
    files = read_files(source)
    # a zip often wraps everything in one folder ("submissions/ann/..."): look inside it
    while files and all(len(PurePosixPath(f.path).parts) > 2 for f in files) and \
            len({PurePosixPath(f.path).parts[0] for f in files}) == 1:
        for f in files:
            f.path = "/".join(PurePosixPath(f.path).parts[1:])
    for f in files:
        sid = student_of(f.path, assignment, pattern)
        if sid is None:
            orphans.append(f.path)
            continue
        subs.setdefault(sid, Submission(sid)).files.append(f)
    return dict(sorted(subs.items())), orphans


def pick_notebooks(sub: Submission, expected: list[str]) -> tuple[dict[str, SubmittedFile], list[str]]:
    """Choose, for each notebook name of the release, the file to grade.

    With a single-notebook release any ``.ipynb`` is a candidate (a renamed notebook is graded
    under the release's name); with several, only files named as the release's notebooks. When a
    student handed in several candidates, **the latest wins** (modification time, then path).
    Returns the choice and notes for the report.
    """
    notes: list[str] = []
    notebooks = [f for f in sub.files if f.name.lower().endswith(".ipynb")]
    chosen: dict[str, SubmittedFile] = {}
    for name in expected:
        cands = notebooks if len(expected) == 1 else [f for f in notebooks if f.name == f"{name}.ipynb"]
        if not cands:
            continue
        best = max(cands, key=lambda f: (f.mtime, f.path))
        chosen[name] = best
        if len(cands) > 1:
            others = ", ".join(f.path for f in cands if f is not best)
            notes.append(f"{len(cands)} submissions of {name}.ipynb: graded the latest, {best.path} (ignored {others})")
        if best.name != f"{name}.ipynb":
            notes.append(f"renamed {best.name} to {name}.ipynb")
    return chosen, notes
