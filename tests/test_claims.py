"""convnets.claims: the book's measured sentences hold on the cached results, and a change in
those results that contradicts a sentence makes its claim fail."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from convnets import claims
from convnets.claims import Outcome, Stat, VERDICTS

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ["01", "02", "03", "04", "05", "06", "07", "08"]


def test_stat_summary_and_comparisons():
    a, b = Stat([0.9, 0.92, 0.91]), Stat([0.5, 0.6, 0.55])
    assert a.n == 3 and abs(a.mean - 0.91) < 1e-12
    assert abs(a.std - 0.01) < 1e-12  # sample standard deviation
    assert a.above(b) and not b.above(a)
    assert not a.overlaps(b) and a.overlaps(Stat([0.905]))
    assert "n=3" in str(a) and "0.910" in str(a)
    with pytest.raises(ValueError, match="NaN"):
        Stat([float("nan")])


def test_stat_prints_an_unsigned_spread_and_no_negative_zero():
    s = str(Stat([-0.0001, 0.0002, -0.0004], "+.3f"))
    assert "± +" not in s and "-0.000" not in s, s
    assert str(Stat([0.14, 0.15], ".0%")).startswith("15% ± 1%")
    assert "range -0.300–+0.100" in str(Stat([-0.3, 0.1], "+.3f"))


def test_check_raises_naming_claim_and_evidence(monkeypatch):
    reg = dict(claims._REGISTRY)
    monkeypatch.setattr(claims, "_REGISTRY", reg)
    monkeypatch.setattr(claims, "_load_modules", lambda: None)

    @claims.claim("99", "good", "A holds.")
    def _good():
        return Outcome(True, "1 > 0", values={"x": 1.5})

    @claims.claim("99", "bad", "B holds.")
    def _bad():
        return Outcome(False, "0.4 is not above 0.5")

    @claims.claim("99", "paper", "P.", paper="paper: 1.0", expect="partly")
    def _paper():
        return Outcome(True, "ours 0.8", verdict="not reproduced here")

    assert claims.check("99", "good", glue=False)["good"].values == {"x": 1.5}
    with pytest.raises(claims.ClaimFailed) as e:
        claims.check("99", glue=False)
    msg = str(e.value)
    assert "99/bad" in msg and "0.4 is not above 0.5" in msg and "B holds." in msg
    # the paper row's verdict is computed, and disagreeing with the book's fails it
    assert "99/paper" in msg and "not reproduced here" in msg and "'partly'" in msg
    assert "99/good" not in msg
    with pytest.raises(KeyError, match="no claim"):
        claims.evaluate("99", ["nope"])
    with pytest.raises(ValueError, match="expect must be one of"):
        claims.claim("99", "x", "X.", expect="sort of")


def test_missing_results_fail_with_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVNETS_RESULTS", str(tmp_path))
    with pytest.raises(claims.MissingResults, match="python -m convnets.experiments normalization"):
        claims.results("normalization")


def test_every_chapter_has_claims_and_all_hold():
    res = claims.evaluate()
    assert len(res) >= 40, f"only {len(res)} claims registered"
    for ch in CHAPTERS:
        n = sum(r.claim.chapter == ch for r in res)
        assert n >= 3, f"chapter {ch} has {n} claims, expected at least 3"
    bad = [f"{r.claim.id}: {r.evidence}" for r in res if not r.holds]
    assert not bad, "claims that fail on the cached results:\n" + "\n".join(bad)
    for r in res:
        if r.claim.expect is not None:
            assert r.outcome.verdict in VERDICTS


def test_cli_prints_a_line_per_claim_and_exits_zero():
    p = subprocess.run([sys.executable, "-m", "convnets.claims"], capture_output=True, text=True,
                       cwd=ROOT, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    assert len(lines) == len(claims.evaluate())
    for ln in lines:
        chapter, verdict, text, evidence = ln.split("\t")
        assert chapter in CHAPTERS and verdict == "holds" and text and evidence


def _flatten_floats(obj, value=0.5):
    """The same document with every float replaced by ``value``: no arm beats another."""
    if isinstance(obj, float):
        return value
    if isinstance(obj, list):
        return [_flatten_floats(v, value) for v in obj]
    if isinstance(obj, dict):
        return {k: _flatten_floats(v, value) for k, v in obj.items()}
    return obj


def _used_results():
    return sorted({u for c in claims.all_claims() for u in c.uses})


def test_claims_rest_on_cached_results():
    used = _used_results()
    assert len(used) >= 6, used
    for name in used:
        assert (ROOT / "results" / f"{name}.json").is_file(), f"claims use {name} but it is not cached"


def _flattened_copy(tmp_path, name):
    """A copy of results/ (its JSON files only: claims read nothing else) where the numbers of
    ``name`` are all equal."""
    dst = tmp_path / "results"
    shutil.copytree(ROOT / "results", dst, ignore=shutil.ignore_patterns("*.pt", "*.npz"))
    for pt in (ROOT / "results").glob("*.pt"):  # checkpoints some claims load: link, don't copy
        (dst / pt.name).symlink_to(pt)
    f = dst / f"{name}.json"
    f.write_text(json.dumps(_flatten_floats(json.loads(f.read_text()))))
    return dst


@pytest.mark.parametrize("name", _used_results())
def test_changed_results_make_a_claim_fail(name, tmp_path, monkeypatch):
    """In a copy of results/ where one experiment's numbers are all equal, at least one claim
    that rests on it fails (read through CONVNETS_RESULTS)."""
    monkeypatch.setenv("CONVNETS_RESULTS", str(_flattened_copy(tmp_path, name)))
    affected = [c for c in claims.all_claims() if name in c.uses]
    results = [r for ch in sorted({c.chapter for c in affected})
               for r in claims.evaluate(ch, [c.key for c in affected if c.chapter == ch])]
    failing = [r.claim.id for r in results if not r.holds]
    assert failing, f"no claim among {[c.id for c in affected]} fails when {name}.json is flattened"


@pytest.mark.parametrize("name", [_used_results()[0]] + [
    pytest.param(n, marks=pytest.mark.slow) for n in _used_results()[1:]])
def test_command_line_exits_1_on_changed_results(name, tmp_path, monkeypatch):
    """The same through `python -m convnets.claims --chapter NN`: a FAILS line and exit status 1
    (one results file in the fast loop, every one in the slow run)."""
    dst = _flattened_copy(tmp_path, name)
    env = dict(os.environ, CONVNETS_RESULTS=str(dst))
    monkeypatch.setenv("CONVNETS_RESULTS", str(dst))
    affected = [c for c in claims.all_claims() if name in c.uses]
    failing = [r.claim.chapter for ch in sorted({c.chapter for c in affected})
               for r in claims.evaluate(ch, [c.key for c in affected if c.chapter == ch]) if not r.holds]
    assert failing, name
    ch = failing[0]
    p = subprocess.run([sys.executable, "-m", "convnets.claims", "--chapter", ch],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert p.returncode == 1, p.stdout[-2000:] + p.stderr[-2000:]
    assert any(ln.startswith(f"{ch}\tFAILS") or ln.startswith(f"{ch}\terror")
               for ln in p.stdout.splitlines()), p.stdout[-2000:]
