"""A kernel fork server: a student's kernel starts in a fraction of a second, isolated as before.

Starting an IPython kernel costs a Python interpreter, ``ipykernel`` and then, in the notebook's
first cell, ``import torch``: about 3.5 s of CPU per student on the course's machine, repeated
for every submission. Here one process (the *zygote*) is started per grading run, with a clean
interpreter that imports ``ipykernel`` and the heavy modules the released notebook imports
(``torch``, ``torchvision``, ``numpy``; never a student's code, never a notebook), and then
waits. For each kernel the grader asks for, it forks; the child creates its namespaces
(``unshare(CLONE_NEWNET | CLONE_NEWNS)``, and ``CLONE_NEWUSER`` at the ``userns`` level: the
same as ``unshare --net --mount`` in the cold path), applies exactly the sandbox of
:func:`convnets.grading.sandbox.enter` (hidden paths, limits, ``nobody``, private scratch) and
runs the kernel in place of ``ipykernel_launcher``.

The kernelspec of each student runs :mod:`convnets.grading._attach` (standard library only), a
stand-in process for jupyter_client: it hands its standard streams and environment to the
zygote, forwards interrupts and terminations to the kernel, and exits with the kernel's status,
so a kernel's death is reported as before. When the stand-in is killed, the zygote kills the
kernel.

Explained for instructors in ``docs/instructors.md`` ("Speed").
"""
from __future__ import annotations

import gc
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

#: modules worth importing once in the zygote when the released notebook imports them
PRELOADABLE = ("torch", "torchvision", "numpy")

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_MS_REC = 16384
_MS_PRIVATE = 1 << 18


def preload_for(release_sources: list[str]) -> list[str]:
    """The PRELOADABLE modules that the released notebooks' code imports (top-level names)."""
    import ast

    found: set[str] = set()
    for src in release_sources:
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return [m for m in PRELOADABLE if m in found]


# --------------------------------------------------------------------------------------------
# the child: namespaces, sandbox, kernel


def _unshare(level: str) -> None:
    from .sandbox import _libc

    libc = _libc()
    if level == "root":
        flags = _CLONE_NEWNS | _CLONE_NEWNET
    else:
        flags = _CLONE_NEWUSER | _CLONE_NEWNS | _CLONE_NEWNET
    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(flags) != 0:
        import ctypes

        err = ctypes.get_errno()
        raise OSError(err, f"unshare: {os.strerror(err)}")
    if level == "userns":  # what `unshare --map-root-user` writes
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
        Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
    # mounts made here must not propagate to the grader's namespace (unshare(1) does the same)
    if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        raise OSError("cannot make / private in the kernel's mount namespace")


def _child(req: dict, fds: list[int], close: list[socket.socket]) -> None:
    """In the forked child: become the student's sandboxed kernel. Never returns."""
    code = 1
    try:
        for s in close:
            s.close()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setsid()
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.chdir(req["cwd"])
        from . import sandbox

        spec = json.loads(Path(req["spec"]).read_text())
        if spec["level"] != "none":
            _unshare(spec["level"])
        env = sandbox.enter(spec, req["connection_file"], base_env=req["env"])
        os.environ.clear()
        os.environ.update(env)
        # torch was imported before the fork and read its thread count then: set the kernel's share
        threads = int(spec.get("threads", 0) or 0)
        if threads > 0 and "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
        # the zygote's own folder is not the kernel's; IPython puts the working folder back
        if sys.path and sys.path[0] in ("", req.get("zygote_cwd")):
            del sys.path[0]
        argv = ["-f", req["connection_file"], "--HistoryManager.hist_file=:memory:", *req.get("extra", [])]
        sys.argv = ["ipykernel_launcher", *argv]
        from ipykernel import kernelapp

        kernelapp.launch_new_instance(argv=argv)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        os._exit(code)


# --------------------------------------------------------------------------------------------
# the server


def serve(sock_path: str, preload: list[str]) -> None:
    """Import ``preload``, listen on ``sock_path`` and fork a kernel per request (never returns)."""
    t0 = time.perf_counter()
    for m in preload:
        try:
            importlib.import_module(m)
        except Exception as e:  # a module that fails here fails in the kernel too, with its own message
            print(f"zygote: preloading {m} failed: {e}", file=sys.stderr)
    importlib.import_module("ipykernel.kernelapp")
    gc.collect()
    gc.freeze()  # keep the imported objects' pages shared with the children
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    os.chmod(sock_path, 0o600)
    srv.listen(64)
    print(f"zygote: ready in {time.perf_counter() - t0:.2f} s, preloaded {', '.join(preload) or 'nothing'}",
          file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    kernels: dict[socket.socket, int] = {}      # stand-in's connection -> kernel pid
    gone: set[socket.socket] = set()             # connections whose stand-in has gone
    cwd = os.getcwd()
    parent = os.getppid()
    while True:
        if os.getppid() != parent:  # the grader is gone (killed): so is its fork server
            sys.exit(0)
        readable, _, _ = select.select([srv, *[c for c in kernels if c not in gone]], [], [], 0.2)
        # reap finished kernels and tell their stand-ins the status
        while kernels:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            for conn, kpid in list(kernels.items()):
                if kpid == pid:
                    try:
                        conn.sendall(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
                    except OSError:
                        pass
                    conn.close()
                    kernels.pop(conn)
                    gone.discard(conn)
        for s in readable:
            if s is srv:
                conn, _ = srv.accept()
                try:
                    data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
                    while not data.endswith(b"\n"):
                        more = conn.recv(1 << 20)
                        if not more:
                            raise OSError("the stand-in hung up")
                        data += more
                    req = json.loads(data)
                    req["zygote_cwd"] = cwd
                except (OSError, ValueError) as e:
                    print(f"zygote: bad request: {e}", file=sys.stderr, flush=True)
                    conn.close()
                    continue
                pid = os.fork()
                if pid == 0:
                    _child(req, fds, [srv, *kernels, conn])
                for fd in fds:
                    os.close(fd)
                kernels[conn] = pid
                try:
                    conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
                except OSError:
                    pass
            else:
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:  # the stand-in died (killed by jupyter_client): the kernel goes too
                    gone.add(s)
                    for kill in (lambda p: os.killpg(p, signal.SIGKILL), lambda p: os.kill(p, signal.SIGKILL)):
                        try:
                            kill(kernels[s])
                            break
                        except OSError:
                            pass


class Zygote:
    """The fork server of one grading run, seen from the grader (start, check, stop)."""

    def __init__(self, sock_dir: Path, preload: list[str], env: dict, log_file: Path):
        self.sock_dir = Path(sock_dir)
        self.sock = self.sock_dir / "z.sock"
        self.preload = preload
        self.env = env
        self.log_file = log_file
        self.proc: subprocess.Popen | None = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self.sock.exists()

    def start(self) -> None:
        """Start the server (it gets ready in the background: see :meth:`ensure`)."""
        self.stop()
        self.sock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if self.sock.exists():
            self.sock.unlink()
        log = open(self.log_file, "a")
        self.proc = subprocess.Popen([sys.executable, "-m", "convnets.grading.zygote", str(self.sock), *self.preload],
                                     env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=str(self.sock_dir), start_new_session=True)
        log.close()

    def ensure(self, wait: float = 1800.0) -> None:
        """Wait until the server listens (importing torch takes minutes on a loaded machine);
        restart it once if it died. RuntimeError when it cannot start."""
        for attempt in range(2):
            if self.proc is None or self.proc.poll() is not None:
                self.start()
            t0 = time.time()
            while not self.sock.exists() and self.proc.poll() is None and time.time() - t0 < wait:
                time.sleep(0.05)
            if self.alive():
                return
        raise RuntimeError(f"the kernel fork server did not start (see {self.log_file})")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.proc.wait()
        self.proc = None

    def argv(self) -> list[str]:
        """The kernelspec's command: the stand-in, which asks this zygote for a kernel."""
        attach = Path(__file__).with_name("_attach.py")
        return [sys.executable, "-S", "-I", str(attach), str(self.sock)]


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2:])
