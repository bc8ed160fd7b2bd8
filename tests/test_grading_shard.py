"""Grading on several machines: ``--shard K/N`` and ``convnets-grade merge``.

The reference is one unsharded run of the same submissions: three shards merged must give the
same rows of ``grades.csv`` and the same gradebook scores.
"""
from __future__ import annotations

import csv
from collections import Counter

import nbformat
import pytest

from convnets.grading import main, runner as R
from convnets.grading.options import parse_shard, shard_of
from test_grading import make_course, opts_for, solved, tiny_source


def test_shards_are_a_deterministic_partition():
    ids = [f"student{i:03d}" for i in range(300)] + ["Ann_Lee_1234", "bob"]
    for n in (1, 2, 3, 7):
        owners = [shard_of(s, n) for s in ids]
        assert owners == [shard_of(s, n) for s in ids], "the same id always lands in the same shard"
        assert set(owners) <= set(range(1, n + 1))
        if n > 1:
            assert min(Counter(owners).values()) > len(ids) / n / 2, f"shards of {n} are very uneven: {Counter(owners)}"
    assert parse_shard("2/3") == (2, 3) and parse_shard(None) is None
    for bad in ("0/3", "4/3", "3", "a/b"):
        with pytest.raises(ValueError):
            parse_shard(bad)


def rows(path):
    with open(path, newline="") as fh:
        return sorted(csv.reader(fh))


def scores(out):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{out / 'gradebook.db'}", "convnets") as gb:
        return {s.id: gb.find_submission("tiny", s.id).score for s in gb.students}


@pytest.mark.slow
def test_three_shards_merged_equal_one_run(tmp_path):
    course = make_course(tmp_path)
    release = tiny_source()
    subs = tmp_path / "subs"
    variants = [solved(release), solved(release, add="return a - b"), solved(release, mul="return 0"),
                solved(release, add="return 0", mul="return 0")]
    for i in range(7):
        (subs / f"s{i}").mkdir(parents=True)
        nbformat.write(variants[i % len(variants)], str(subs / f"s{i}" / "tiny.ipynb"))
    (subs / "broken").mkdir()
    (subs / "broken" / "tiny.ipynb").write_bytes(b"{not json")
    whole = tmp_path / "whole"
    R.grade_all(opts_for(course, subs, whole))
    parts = []
    for k in (1, 2, 3):
        parts.append(tmp_path / f"shard{k}")
        R.grade_all(opts_for(course, subs, parts[-1], shard=f"{k}/3", jobs=1))
    students = [{p.stem for p in (o / "results").glob("*.json")} for o in parts]
    assert sum(map(len, students)) == 8 and set().union(*students) == {f"s{i}" for i in range(7)} | {"broken"}, \
        f"each student is graded in exactly one shard: {students}"
    merged = tmp_path / "merged"
    assert main(["merge", *map(str, parts), "--out", str(merged)]) == 0
    assert rows(merged / "grades.csv") == rows(whole / "grades.csv")
    assert scores(merged) == scores(whole) and len(scores(whole)) == 8
    assert sorted(p.name for p in (merged / "feedback").iterdir()) == sorted(p.name for p in (whole / "feedback").iterdir())
    assert main(["merge", str(parts[0]), str(tmp_path), "--out", str(tmp_path / "bad")]) == 2, \
        "a folder that is not a grading output is refused"


# --------------------------------------------------------------------------------------------
# the cluster recipes of docs/instructors.md, checked as far as a machine without SLURM or
# Kubernetes allows: each task's command line, expanded by bash with the variables the scheduler
# sets, must parse and name shards 1..N exactly once

import re  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
from pathlib import Path  # noqa: E402

from convnets.grading import build_parser  # noqa: E402

DOC = (Path(__file__).resolve().parents[1] / "docs" / "instructors.md").read_text()


def block(lang: str, marker: str) -> str:
    found = [b for b in re.findall(rf"```{lang}\n(.*?)```", DOC, re.S) if marker in b]
    assert len(found) == 1, f"docs/instructors.md must hold one {lang} block with {marker!r}"
    return found[0]


def grade_args(script: str, env: dict, tmp_path) -> list[str]:
    """The arguments the script passes to convnets-grade (bash runs it with a stand-in)."""
    stub = tmp_path / "bin"
    stub.mkdir(exist_ok=True)
    for name in ("convnets-grade",):
        (stub / name).write_text('#!/bin/bash\nprintf "%s\\n" "$@"\n')
        (stub / name).chmod(0o755)
    script = script.replace(".venv/bin/convnets-grade", "convnets-grade")
    proc = subprocess.run(["bash", "-c", script], env={"PATH": f"{stub}:/usr/bin:/bin", **env},
                          capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_slurm_array_job(tmp_path):
    script = block("bash", "#SBATCH")
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0, "bash syntax"
    lo, hi = map(int, re.search(r"#SBATCH --array=(\d+)-(\d+)", script).groups())
    shards = []
    for task in range(lo, hi + 1):
        env = {"SLURM_SUBMIT_DIR": str(tmp_path), "SLURM_ARRAY_TASK_ID": str(task),
               "SLURM_ARRAY_TASK_COUNT": str(hi - lo + 1), "SLURM_CPUS_PER_TASK": "4"}
        args = build_parser().parse_args(grade_args(script, env, tmp_path))
        shards.append(parse_shard(args.shard))
        assert args.jobs == 4 and str(task) in str(args.out)
    n = hi - lo + 1
    assert sorted(shards) == [(k, n) for k in range(1, n + 1)], shards
    assert "convnets-grade merge" in DOC


def test_kubernetes_indexed_job(tmp_path):
    import yaml

    job = yaml.safe_load(block("yaml", "kind: Job"))
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job" and job["metadata"]["name"]
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed", "one shard per index needs an Indexed Job"
    n = spec["completions"]
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] in ("Never", "OnFailure"), "a Job's pods may not restart Always"
    (container,) = pod["containers"]
    assert container["name"] and container["image"]
    mounts = {m["name"] for m in container.get("volumeMounts", [])}
    assert mounts <= {v["name"] for v in pod.get("volumes", [])}, "every volumeMount names a volume"
    assert container["command"] == ["bash", "-c"] and len(container["args"]) == 1
    shards = []
    for index in range(n):
        argv = grade_args(container["args"][0], {"JOB_COMPLETION_INDEX": str(index)}, tmp_path)
        args = build_parser().parse_args(argv)
        shards.append(parse_shard(args.shard))
        assert f"shard{index + 1}" in str(args.out)
    assert sorted(shards) == [(k, n) for k in range(1, n + 1)], f"completions {n} vs shards {shards}"
    assert shlex.split(container["args"][0])[1].endswith("convnets-grade")
