"""One set of grading rules: ``nbgrader_config.py`` (nbgrader run by hand) and the grader's worker
agree on every rule of :mod:`convnets.grading.rules`, and the command line's defaults are the same."""
from __future__ import annotations

from pathlib import Path

from traitlets.config.loader import PyFileConfigLoader

from convnets.grading import build_parser, rules
from convnets.grading.options import Options
from convnets.grading.worker import nbgrader_config

ROOT = Path(__file__).resolve().parents[1]


def course_config():
    return PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()


def worker_config(tmp_path, **job):
    base = {"course": str(tmp_path), "course_id": "convnets", "cell_timeout": Options.cell_timeout,
            "max_output_chars": Options.max_output_chars, "kernel_dir": str(tmp_path / "k"), "level": "none"}
    base.update(job)
    return nbgrader_config(base)


def test_course_config_and_worker_agree(tmp_path):
    by_hand, grader = course_config(), worker_config(tmp_path)
    for section, key in rules.KEYS:
        assert section in by_hand and key in by_hand[section], f"nbgrader_config.py does not set {section}.{key}"
        assert by_hand[section][key] == grader[section][key], \
            f"{section}.{key}: nbgrader_config.py {by_hand[section][key]!r} vs grader {grader[section][key]!r}"


def test_one_cell_timeout_everywhere(tmp_path):
    cli = build_parser().parse_args(["a", "subs", "--out", "o"])
    values = {"nbgrader_config.py": course_config().GuardedExecute.timeout,
              "worker": worker_config(tmp_path).GuardedExecute.timeout,
              "Options": Options.cell_timeout, "--cell-timeout": cli.cell_timeout}
    assert set(values.values()) == {rules.CELL_TIMEOUT}, values
    assert worker_config(tmp_path, cell_timeout=7).GuardedExecute.timeout == 7, "--cell-timeout reaches the worker"


def test_both_scrub_tracebacks_and_hide_tests():
    fb = course_config().GenerateFeedback.preprocessors
    assert fb.index("convnets.grading.preprocessors.ScrubTracebacks") < fb.index("nbgrader.preprocessors.ClearHiddenTests")
    assert course_config().Autograde.autograde_preprocessors[0] == "convnets.grading.preprocessors.GuardedExecute"


def test_nbgrader_resolves_every_rule(tmp_path):
    """nbgrader itself builds its converters from the course's config: the names resolve to classes."""
    from nbgrader.converters import Autograde, GenerateFeedback
    from nbgrader.coursedir import CourseDirectory

    cfg = course_config()
    cfg.CourseDirectory.root = str(tmp_path)
    ag = Autograde(coursedir=CourseDirectory(config=cfg), config=cfg)
    names = [p if isinstance(p, str) else f"{p.__module__}.{p.__name__}" for p in ag.autograde_preprocessors]
    assert names == rules.AUTOGRADE_PREPROCESSORS
    fb = GenerateFeedback(coursedir=CourseDirectory(config=cfg), config=cfg)
    assert list(fb.preprocessors) == rules.FEEDBACK_PREPROCESSORS


def test_each_kernel_gets_its_share_of_the_cores(tmp_path):
    """With --jobs kernels at once, each kernel's numerical libraries get cores // jobs threads
    (at least one): the kernel's environment says so, and the fork server sets torch's count."""
    from convnets.grading import prepare, sandbox

    assert prepare.kernel_threads(2, cores=2) == 1
    assert prepare.kernel_threads(1, cores=8) == 8
    assert prepare.kernel_threads(3, cores=8) == 2
    assert prepare.kernel_threads(16, cores=2) == 1
    kdir = tmp_path / "k"
    spec = sandbox.write_spec(tmp_path / "spec.json", level="none", kernel_dir=kdir, hide=[], keep=[],
                              memory_bytes=0, max_file_bytes=0, threads=3)
    import json

    env = sandbox.enter(json.loads(spec.read_text()), str(tmp_path / "conn.json"), base_env={"PATH": "/bin"})
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3"
    spec0 = sandbox.write_spec(tmp_path / "spec0.json", level="none", kernel_dir=kdir, hide=[], keep=[],
                               memory_bytes=0, max_file_bytes=0)
    env0 = sandbox.enter(json.loads(spec0.read_text()), str(tmp_path / "conn.json"), base_env={"PATH": "/bin"})
    assert "OMP_NUM_THREADS" not in env0
