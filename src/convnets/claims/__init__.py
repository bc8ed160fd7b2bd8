"""Measured claims the book makes, each tied to the check that supports it.

A sentence of the book that states a measured result ("batch norm trains the deep net at every
learning rate where the plain one stays at chance") is registered here with a function that
reads its evidence (cached results under :func:`convnets.experiments.results_dir`, or a small
computation) and says whether the sentence holds. The chapter calls :func:`check` right where it
shows the numbers, so a build whose numbers stop supporting a sentence fails, naming the claim
and its evidence; ``python -m convnets.claims`` evaluates every registered claim from the cached
results and exits 1 when any fails.

A claim that compares our measurement with a paper's (a "Paper vs here" row) also carries the
paper's figure and computes a verdict, one of :data:`VERDICTS`; the book states the verdict it
expects (``expect=``), and the claim holds only when the computed verdict equals it. The
chapter's table (:func:`paper_table`) prints the computed verdict, never a typed one.

Claims live in one module per chapter, ``convnets.claims.chNN_topic``; each registers its
claims with :func:`claim` at import. Explained in every chapter's "Paper vs here" section.

Writing a claim::

    @claim("02", "bn-beats-plain", "Batch norm trains the deep plain CNN where the plain net "
           "stays near chance.", uses=("normalization",))
    def _():
        r = results("normalization")
        bn, plain = Stat(r["bn"]), Stat(r["plain"])
        return Outcome(bn.min > plain.max + 0.1, f"batch norm {bn}, plain {plain}",
                       values={"bn": bn.mean, "plain": plain.mean})
"""
from __future__ import annotations

import importlib
import json
import math
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

__all__ = [
    "VERDICTS", "Claim", "Outcome", "Result", "Stat", "ClaimFailed", "MissingResults",
    "claim", "results", "all_claims", "evaluate", "check", "paper_table", "glue_values",
    "verdict_from",
]

VERDICTS = ("reproduced", "partly", "not reproduced here")


class ClaimFailed(AssertionError):
    """A sentence of the book is no longer supported by its evidence."""


class MissingResults(FileNotFoundError):
    """A claim's cached results are absent."""


@dataclass
class Outcome:
    """What a claim's check found.

    ``holds``: whether the sentence is true of the evidence; ``evidence``: the numbers, in words
    (``"batch norm 0.981 ± 0.002 (n=3) vs plain 0.113 ± 0.010 (n=3)"``); ``values``: numbers the
    chapter may glue into its text; ``verdict``: for a paper comparison, one of :data:`VERDICTS`
    (then ``holds`` is computed from it and the claim's ``expect``).
    """

    holds: bool
    evidence: str
    values: dict[str, Any] = field(default_factory=dict)
    verdict: str | None = None


@dataclass(frozen=True)
class Claim:
    """One sentence of the book and the check that supports it."""

    chapter: str
    key: str
    text: str
    check: Callable[[], Outcome]
    uses: tuple[str, ...] = ()
    paper: str | None = None
    expect: str | None = None

    @property
    def id(self) -> str:
        return f"{self.chapter}/{self.key}"


@dataclass
class Result:
    claim: Claim
    outcome: Outcome | None
    error: str | None = None

    @property
    def holds(self) -> bool:
        return self.error is None and self.outcome is not None and self.outcome.holds

    @property
    def verdict(self) -> str:
        if self.error is not None:
            return "error"
        return "holds" if self.holds else "FAILS"

    @property
    def evidence(self) -> str:
        if self.error is not None:
            return self.error
        assert self.outcome is not None
        ev = self.outcome.evidence
        if self.claim.expect is not None:
            ev = f"verdict {self.outcome.verdict!r} (book says {self.claim.expect!r}); {ev}"
        return ev


_REGISTRY: dict[str, Claim] = {}


def claim(chapter: str, key: str, text: str, *, uses: Sequence[str] = (),
          paper: str | None = None, expect: str | None = None):
    """Register the decorated function as the check of the sentence ``text`` of ``chapter``.

    ``uses``: the cached results (names of ``results/<name>.json``) the check reads.
    ``paper`` and ``expect``: for a "Paper vs here" row, the paper's figure (quoted from
    REFERENCE.md, with its source) and the verdict the book states; the function must then set
    ``Outcome.verdict``.
    """
    if not (isinstance(chapter, str) and len(chapter) == 2 and chapter.isdigit()):
        raise ValueError(f"chapter must be two digits like '02', got {chapter!r}")
    if expect is not None and expect not in VERDICTS:
        raise ValueError(f"expect must be one of {VERDICTS}, got {expect!r}")

    def register(fn: Callable[[], Outcome]) -> Callable[[], Outcome]:
        c = Claim(chapter, key, " ".join(text.split()), fn, tuple(uses), paper, expect)
        if c.id in _REGISTRY and _REGISTRY[c.id].check.__qualname__ != fn.__qualname__:
            raise ValueError(f"claim {c.id} is registered twice")
        _REGISTRY[c.id] = c
        return fn

    return register


def _load_modules() -> None:
    for m in pkgutil.iter_modules(__path__):
        if m.name.startswith("ch"):
            importlib.import_module(f"{__name__}.{m.name}")


def all_claims(chapter: str | None = None) -> list[Claim]:
    """Every registered claim (of one chapter), in chapter then registration order."""
    _load_modules()
    out = [c for c in _REGISTRY.values() if chapter is None or c.chapter == chapter]
    return sorted(out, key=lambda c: c.chapter)


def results(name: str) -> dict[str, Any]:
    """The cached results ``results/<name>.json`` (or under ``$CONVNETS_RESULTS``)."""
    from ..experiments import results_dir

    path = results_dir() / f"{name}.json"
    if not path.is_file():
        raise MissingResults(
            f"no cached results {path}: run `python -m convnets.experiments {name}` to compute them"
        )
    return json.loads(path.read_text())


def _run(c: Claim) -> Result:
    try:
        out = c.check()
    except MissingResults as e:
        return Result(c, None, f"missing results: {e}")
    except Exception as e:  # a check that cannot read its evidence fails, with the reason
        return Result(c, None, f"{type(e).__name__}: {e}")
    if not isinstance(out, Outcome):
        return Result(c, None, f"check returned {type(out).__name__}, not Outcome")
    if c.expect is not None:
        if out.verdict not in VERDICTS:
            return Result(c, out, f"paper comparison without a verdict (got {out.verdict!r})")
        out.holds = out.verdict == c.expect
    return Result(c, out)


def evaluate(chapter: str | None = None, keys: Iterable[str] | None = None) -> list[Result]:
    """Evaluate the claims of ``chapter`` (all chapters when None), or only ``keys``."""
    claims_ = all_claims(chapter)
    if keys is not None:
        keys = list(keys)
        known = {c.key for c in claims_}
        unknown = [k for k in keys if k not in known]
        if unknown:
            raise KeyError(f"no claim {unknown} in chapter {chapter}; known: {sorted(known)}")
        claims_ = [c for c in claims_ if c.key in keys]
    return [_run(c) for c in claims_]


def check(chapter: str, *keys: str, glue: bool = True) -> dict[str, Outcome]:
    """Evaluate claims of ``chapter`` (all of them when no key is given) and raise
    :class:`ClaimFailed` naming every one that does not hold, with its evidence.

    Call it in the chapter right where the numbers are shown: the build then fails when the text
    and the numbers disagree. Returns ``{key: Outcome}``; with ``glue`` the outcomes' values are
    glued for the text as ``<key>_<name>`` (dashes become underscores) when myst-nb is present.
    """
    res = evaluate(chapter, keys or None)
    bad = [r for r in res if not r.holds]
    if bad:
        lines = [f"{r.claim.id}: {r.claim.text}\n    evidence: {r.evidence}" for r in bad]
        raise ClaimFailed("the measurement no longer supports what the book says:\n" + "\n".join(lines))
    outcomes = {r.claim.key: r.outcome for r in res}
    if glue:
        glue_values(outcomes)
    return outcomes  # type: ignore[return-value]


def glue_values(outcomes: dict[str, Outcome]) -> None:
    """Glue each outcome's values as ``<key>_<name>`` for ``{glue:text}`` (only inside the book
    build; elsewhere nothing happens)."""
    from ..notebook import glue as _glue

    for key, out in outcomes.items():
        for name, value in out.values.items():
            _glue(f"{key}_{name}".replace("-", "_"), value)


def paper_table(chapter: str):
    """The chapter's "Paper vs here" table from its paper-comparison claims: what the paper
    claims, its figure, ours, and the computed verdict. An HTML table in a notebook (it renders the
    same in the book and in Jupyter), its text elsewhere."""
    import html

    res = [r for r in evaluate(chapter) if r.claim.paper is not None]
    if not res:
        raise ValueError(f"chapter {chapter} has no paper-comparison claims")
    bad = [r for r in res if not r.holds]
    if bad:
        raise ClaimFailed("; ".join(f"{r.claim.id}: {r.evidence}" for r in bad))
    head = ("Claim", "Paper", "Here", "Verdict")
    rows = [(r.claim.text, r.claim.paper, r.outcome.evidence, r.outcome.verdict) for r in res]
    cells = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row[:3])
                   + f"<td><strong>{html.escape(str(row[3]))}</strong></td></tr>" for row in rows)
    table = f'<table class="paper-vs-here"><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>'
    try:
        from IPython.display import HTML
    except ImportError:  # pragma: no cover
        return "\n".join(" | ".join(map(str, row)) for row in [head, *rows])
    return HTML(table)


def verdict_from(full: bool, partial: bool) -> str:
    """``"reproduced"`` when the full claim holds, ``"partly"`` when a weaker form does,
    else ``"not reproduced here"``."""
    return VERDICTS[0] if full else VERDICTS[1] if partial else VERDICTS[2]


def _no_negative_zero(v: float, fmt: str) -> str:
    """``format(v, fmt)``, but a value that rounds to zero prints as zero, never as "-0.000"."""
    text = format(v, fmt)
    return format(0.0, fmt) if v < 0 and not any(c in "123456789" for c in text) else text


class Stat:
    """Mean, spread and range of a few repeated measurements (seeds)."""

    def __init__(self, values: Iterable[float], fmt: str = ".3f"):
        self.values = [float(v) for v in values]
        if not self.values:
            raise ValueError("Stat needs at least one value")
        if any(math.isnan(v) for v in self.values):
            raise ValueError(f"Stat got NaN among {self.values}")
        self.fmt = fmt

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return sum(self.values) / self.n

    @property
    def std(self) -> float:
        """Sample standard deviation (0 for one value)."""
        if self.n < 2:
            return 0.0
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for v in self.values) / (self.n - 1))

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def above(self, other: "Stat", margin: float = 0.0) -> bool:
        """Every run of ``self`` beats every run of ``other`` by more than ``margin``."""
        return self.min > other.max + margin

    def overlaps(self, other: "Stat") -> bool:
        """The ranges of the two sets of runs overlap (the difference is within the noise)."""
        return self.min <= other.max and other.min <= self.max

    def __str__(self) -> str:
        f = self.fmt
        if self.n == 1:
            return f"{_no_negative_zero(self.mean, f)} (1 run)"
        sf = f.replace("+", "")  # a spread has no sign: "+0.093 ± 0.026", not "± +0.026"
        m, lo, hi = (_no_negative_zero(v, f) for v in (self.mean, self.min, self.max))
        return f"{m} ± {self.std:{sf}} (n={self.n}, range {lo}–{hi})"

    __repr__ = __str__
