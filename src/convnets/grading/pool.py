"""Running the prepared submissions: a pool of long-lived workers and one kernel fork server.

Each of ``--jobs`` threads hands one prepared submission at a time to a worker process
(:mod:`.worker` ``--serve``) that imported nbgrader once; the kernel each submission runs in comes
from the fork server (:mod:`.zygote`), which imported ``ipykernel`` and the release's heavy modules
once. A submission running longer than ``--timeout`` has its worker and kernel killed (a fresh
worker takes the next one). ``--fresh-processes`` instead starts a worker and a cold kernel per
student (the slower path, kept for comparison and as a fallback).
"""
from __future__ import annotations

import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .options import CellScore, Options, Record
from .prepare import nbgrader_env
from .zygote import Zygote

log = logging.getLogger("convnets.grading")


def kill_kernel(kdir: Path) -> None:
    """Kill the kernel started for this submission if it outlived its worker (by its pid file)."""
    pid_file = kdir / "kernel.pid"
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    # still our kernel, not a recycled pid: a cold kernel names kdir on its command line, a forked
    # one has the fork server's
    if str(kdir).encode() in cmdline or b"convnets.grading.zygote" in cmdline:
        for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                kill()
                return
            except OSError:
                pass


class _Worker:
    """One ``worker --serve`` process."""

    def __init__(self, env: dict):
        env = dict(env, CONVNETS_GRADER_SPAWNED=repr(time.time()))
        self.proc = subprocess.Popen([sys.executable, "-m", "convnets.grading.worker", "--serve"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=env, start_new_session=True)
        self.buf = b""

    def submit(self, job_file: Path, timeout: float) -> bool:
        """Send a job; wait until it is done (True) or ``timeout`` seconds pass (False)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{job_file}\n".encode())
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                if line.startswith(b"@@done "):
                    return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:  # the worker died: its result.json says what it finished
                    return True
                self.buf += chunk

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()

    def close(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()


class Pool:
    """Grades prepared submissions (:func:`convnets.grading.prepare.prepare`); thread-safe."""

    def __init__(self, opts: Options, level: str, preload: list[str], warm: int = 0):
        self.opts = opts
        self.level = level
        self.lock = threading.Lock()
        self.idle: list[_Worker] = []
        self.busy: set = set()
        self.env = nbgrader_env()
        self.env.update(MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
        self.zygote: Zygote | None = None
        if not opts.fresh_processes:
            self.sock_dir = Path(tempfile.mkdtemp(prefix="cgz-"))
            self.zygote = Zygote(self.sock_dir, preload, self.env, opts.out / ".grader" / "zygote.log")
            self.zygote.start()
            # workers that import nbgrader while the assignment is being released
            self.idle = [_Worker(self.env) for _ in range(warm)]

    def launcher(self) -> list[str] | None:
        """The kernelspec's launcher for the next submission (None: a cold kernel)."""
        with self.lock:
            if self.zygote is None:
                return None
            try:
                self.zygote.ensure()
            except RuntimeError as e:  # cold kernels still grade, only slower
                log.warning("%s: starting a fresh kernel per student instead", e)
                self.zygote.stop()
                self.zygote = None
                return None
            return self.zygote.argv()

    def _run_fresh(self, job: dict) -> tuple[bool, int | None]:
        work = Path(job["course"])
        env = dict(self.env, CONVNETS_GRADER_SPAWNED=repr(time.time()), **job["env"])
        with open(job["log_file"], "w") as logf:
            proc = subprocess.Popen([sys.executable, "-m", "convnets.grading.worker", str(work / "job.json")],
                                    cwd=work, env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
            with self.lock:
                self.busy.add(proc)
            try:
                proc.wait(timeout=self.opts.timeout)
                return True, proc.returncode
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return False, proc.returncode
            finally:
                with self.lock:
                    self.busy.discard(proc)

    def _run_pooled(self, job: dict) -> tuple[bool, int | None]:
        with self.lock:
            worker = self.idle.pop() if self.idle else None
        if worker is None or not worker.alive():
            worker = _Worker(self.env)
        with self.lock:
            self.busy.add(worker.proc)
        try:
            done = worker.submit(Path(job["course"]) / "job.json", self.opts.timeout)
        finally:
            with self.lock:
                self.busy.discard(worker.proc)
        if done and worker.alive():
            with self.lock:
                self.idle.append(worker)
            return True, None
        worker.kill()
        return done, worker.proc.returncode

    def run(self, job: dict, record: Record) -> Record:
        """Grade one prepared submission; fill ``record`` from the worker's result."""
        opts = self.opts
        work, kdir = Path(job["course"]), Path(job["kernel_dir"])
        t0 = time.time()
        try:
            finished, rc = (self._run_fresh if opts.fresh_processes else self._run_pooled)(job)
        finally:
            kill_kernel(kdir)
        record.seconds = round(time.time() - t0, 2)
        result_file = work / "result.json"
        result = json.loads(result_file.read_text()) if result_file.exists() else None
        if not finished:
            record.status, record.reason = "timeout", f"the notebook ran longer than {opts.timeout} s and was stopped"
        elif result is None:
            record.status = "failed"
            record.reason = f"the grader's worker ended with status {rc} (see logs/{job['student']}.log)"
        elif result.get("error"):
            record.status, record.reason = "failed", f"nbgrader: {result['error']}"
        else:
            kinds = result.get("kinds", [])
            msgs = result.get("messages", {})
            for kind in ("crashed", "timeout", "out_of_memory"):
                if kind in kinds:
                    reason = msgs.get(f"kind:{kind}", kind)
                    if kind == "timeout":
                        reason = f"a cell ran longer than {opts.cell_timeout} s and was interrupted"
                    record.status, record.reason = kind, reason
                    break
            if "output_truncated" in kinds:
                record.notes.append(f"output cut at {opts.max_output_chars:,} characters per cell")
            for gid, t in result.get("tests", {}).items():
                score, top = float(t["score"] or 0.0), float(t["max"])
                record.tests[gid] = CellScore(score, top, score >= top and top > 0, msgs.get(gid, ""))
        if result:
            record.phases = {k: round(float(v), 3) for k, v in result.get("phases", {}).items()}
        # the instructor's copy of the executed notebook and the student's feedback
        sid, a = job["student"], job["assignment"]
        for kind, pattern in (("autograded", "*.ipynb"), ("feedback", "*.html")):
            dest = opts.out / kind / sid
            shutil.rmtree(dest, ignore_errors=True)
            for p in sorted((work / kind / sid / a).glob(pattern)):
                dest.mkdir(parents=True, exist_ok=True)
                shutil.copy(p, dest / p.name)
        if not opts.keep_work:
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(kdir, ignore_errors=True)
        return record

    def kill_all(self) -> None:
        """Stop every running submission now (Ctrl-C)."""
        with self.lock:
            procs = list(self.busy)
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass

    def close(self) -> None:
        with self.lock:
            workers, self.idle = self.idle, []
        for w in workers:
            w.close()
        if self.zygote is not None:
            self.zygote.stop()
        if not self.opts.fresh_processes:
            shutil.rmtree(self.sock_dir, ignore_errors=True)
