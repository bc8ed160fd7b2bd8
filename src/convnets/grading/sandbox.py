"""Kernel isolation for autograding: detection, the kernelspec, and the launcher it runs.

Explained for instructors in ``docs/instructors.md`` ("Isolation"). The autograder starts each
student's kernel through a kernelspec whose argv is::

    unshare --net --mount -- python -m convnets.grading.sandbox SPEC.json -- {connection_file}

(``unshare -r --net --mount`` when not root). This module's ``main`` then runs *inside* the new
namespaces, still privileged, and before it replaces itself with ``ipykernel_launcher``:

1. hides the paths the student must not read (the course's solutions/, the gradebooks, the
   grader's output folder, the submissions, the other students' work, ``/tmp``) under empty
   read-only tmpfs mounts, and binds back only the kernel's own folder and what Python needs;
2. sets resource limits: ``RLIMIT_DATA`` (what ``prlimit --data`` sets: a large allocation raises
   ``MemoryError`` and the kernel lives on; ``--as`` would make ``import torch`` hang), the
   largest file it may write, no core dumps;
3. drops privileges: as root, to the unprivileged ``nobody`` user that owns only the kernel's
   folder; in a user namespace, by emptying the capability bounding set so the student cannot
   undo the mounts;
4. points ``HOME`` and ``TMPDIR`` at a private scratch folder.

The network namespace has no interface up, so any connection fails; the kernel talks to the
grader over Unix sockets (``ipc`` transport), which cross namespaces by path.

Without ``unshare`` (or without the right to use it) the grader logs a warning and runs the
same launcher with only the limits and the private scratch folder (level ``"none"``).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import pwd
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterable

#: isolation levels, strongest first
LEVELS = ("root", "userns", "none")

_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_BIND = 4096
_MS_REC = 16384
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38


def unshare_prefix(level: str) -> list[str]:
    """The command prefix that creates the namespaces for ``level`` (``[]`` for ``"none"``)."""
    if level == "root":
        return [shutil.which("unshare") or "unshare", "--net", "--mount", "--"]
    if level == "userns":
        return [shutil.which("unshare") or "unshare", "--map-root-user", "--net", "--mount", "--"]
    if level == "none":
        return []
    raise ValueError(f"unknown isolation level {level!r}: use one of {LEVELS}")


def detect_level() -> tuple[str, str]:
    """The strongest isolation this machine allows, and a sentence saying why.

    ``"root"`` needs root and ``unshare`` (util-linux); ``"userns"`` needs unprivileged user
    namespaces (``sysctl kernel.unprivileged_userns_clone=1`` on Debian/Ubuntu, and on Ubuntu
    24.04 ``kernel.apparmor_restrict_unprivileged_userns=0``); otherwise ``"none"``.
    """
    if sys.platform != "linux":
        return "none", f"kernel isolation needs Linux namespaces; this is {sys.platform}"
    if shutil.which("unshare") is None:
        return "none", "the `unshare` command (util-linux) is not installed"
    candidates = ["root", "userns"] if os.geteuid() == 0 else ["userns"]
    errors = []
    for level in candidates:
        try:
            proc = subprocess.run(unshare_prefix(level) + ["true"], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired) as e:  # pragma: no cover - depends on the OS
            errors.append(f"{level}: {e}")
            continue
        if proc.returncode == 0:
            return level, f"unshare works ({'as root' if level == 'root' else 'in a user namespace'})"
        errors.append(f"{level}: {proc.stderr.strip() or proc.returncode}")
    return "none", "unshare is not permitted here (" + "; ".join(errors) + ")"


def write_kernelspec(jupyter_path: Path, name: str, level: str, spec_file: Path,
                     launcher: list[str] | None = None) -> Path:
    """Write ``jupyter_path/kernels/<name>/kernel.json`` that starts the sandboxed kernel.

    ``spec_file`` is the JSON written by :func:`write_spec` for one submission. ``launcher``: the
    command that asks a kernel fork server for it (:meth:`convnets.grading.zygote.Zygote.argv`);
    None starts a fresh interpreter in new namespaces (``unshare``, then :func:`main`).
    """
    kdir = Path(jupyter_path) / "kernels" / name
    kdir.mkdir(parents=True, exist_ok=True)
    if launcher:
        argv = list(launcher) + [str(spec_file), "--", "{connection_file}"]
    else:
        argv = unshare_prefix(level) + [sys.executable, "-m", "convnets.grading.sandbox", str(spec_file),
                                        "--", "{connection_file}"]
    spec = {"argv": argv, "display_name": f"Python 3 (sandboxed: {level})", "language": "python",
            "metadata": {"debugger": False}}
    (kdir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return kdir


def write_spec(path: Path, *, level: str, kernel_dir: Path, hide: Iterable[Path], keep: Iterable[Path],
               memory_bytes: int, max_file_bytes: int, threads: int = 0) -> Path:
    """Write the launcher's instructions for one submission's kernel (read by :func:`main`).
    ``threads``: CPU threads for the kernel's numerical libraries (0: their default, every core);
    with several kernels at once, each gets its share of the cores instead of all of them."""
    spec = {"level": level, "kernel_dir": str(kernel_dir), "hide": [str(p) for p in hide],
            "keep": [str(p) for p in keep], "memory_bytes": int(memory_bytes),
            "max_file_bytes": int(max_file_bytes), "threads": int(threads)}
    Path(path).write_text(json.dumps(spec, indent=1))
    return Path(path)


def python_paths() -> list[Path]:
    """Folders the kernel's Python needs (interpreter prefix, sys.path, this package)."""
    out = {Path(sys.prefix), Path(sys.base_prefix), Path(__file__).resolve().parents[2]}
    for p in sys.path:
        if p and os.path.isdir(p):
            out.add(Path(p).resolve())
    return sorted(out)


# --------------------------------------------------------------------------------------------
# the launcher: runs inside the namespaces, then exec's the kernel


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _mount(libc, src: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    rc = libc.mount(src.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                    data.encode() if data else None)
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {src} on {target}: {os.strerror(err)}")


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _hide_and_keep(hide: list[str], keep: list[str], owner: tuple[int, int] | None) -> None:
    """Cover every ``hide`` path with an empty tmpfs (or /dev/null for a file), then bind the
    ``keep`` folders that fell under a hidden path back at their own paths."""
    libc = _libc()
    # hold every kept folder open: after a tmpfs covers its path, the fd still reaches it
    fds = {}
    for k in keep:
        if os.path.isdir(k):
            fds[k] = os.open(k, os.O_RDONLY | os.O_DIRECTORY)
    hidden: list[str] = []
    for h in sorted(set(os.path.realpath(p) for p in hide), key=len):
        if any(_under(h, done) for done in hidden) or not os.path.lexists(h):
            continue
        if os.path.isdir(h):
            _mount(libc, "tmpfs", h, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=1m,mode=0755")
        else:
            _mount(libc, "/dev/null", h, None, _MS_BIND, None)
        hidden.append(h)
    for k, fd in sorted(fds.items(), key=lambda kv: len(kv[0])):
        if any(_under(k, h) for h in hidden):
            os.makedirs(k, exist_ok=True)
            _mount(libc, f"/proc/self/fd/{fd}", k, None, _MS_BIND | _MS_REC, None)
        os.close(fd)
    # a small private /dev/shm (torch's shared memory), writable, gone with the namespace
    if os.path.isdir("/dev/shm"):
        try:
            _mount(libc, "tmpfs", "/dev/shm", "tmpfs", _MS_NOSUID | _MS_NODEV, "size=64m,mode=1777")
        except OSError:
            pass
    # remount the hiding tmpfs read-only now that the bind points exist
    for h in hidden:
        if os.path.isdir(h):
            try:
                _mount(libc, "none", h, None, 32 | _MS_RDONLY | _MS_NOSUID | _MS_NODEV, "size=1m,mode=0755")
            except OSError:
                pass


def _chown_tree(root: str, uid: int, gid: int, skip_suffix: str | None = None) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        os.chown(dirpath, uid, gid)
        for f in filenames:
            if skip_suffix and f.endswith(skip_suffix):
                continue
            try:
                os.chown(os.path.join(dirpath, f), uid, gid, follow_symlinks=False)
            except OSError:
                pass


def _drop_capabilities() -> None:
    libc = _libc()
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    for cap in range(64):
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)


def enter(spec: dict, connection_file: str, base_env: dict | None = None) -> dict:
    """Apply the sandbox of ``spec`` to this process (already in its namespaces, working folder =
    the notebook's): hide and keep paths, set the limits, drop privileges. Returns the kernel's
    environment (``base_env`` with a private ``HOME``, ``TMPDIR`` and caches). Used by :func:`main`
    (cold start, then ``exec``) and by :mod:`convnets.grading.zygote` (after a fork)."""
    level = spec["level"]
    kdir = spec["kernel_dir"]
    home, tmp = os.path.join(kdir, "home"), os.path.join(kdir, "tmp")
    for d in (home, tmp):
        os.makedirs(d, exist_ok=True)
    cwd = os.getcwd()
    owner = None
    if level == "root":
        nobody = pwd.getpwnam("nobody")
        owner = (nobody.pw_uid, nobody.pw_gid)
        _chown_tree(kdir, *owner)
        _chown_tree(cwd, *owner, skip_suffix=".ipynb")
        os.chown(connection_file, *owner)
    if level in ("root", "userns"):
        _hide_and_keep(spec["hide"], [cwd, kdir, os.path.dirname(connection_file)] + spec["keep"], owner)
        os.chdir(cwd)  # the same folder, now reached through its bind mount
        # the notebook being graded sits here with its hidden tests restored: cover it
        libc = _libc()
        for f in os.listdir(cwd):
            if f.endswith(".ipynb"):
                _mount(libc, "/dev/null", os.path.join(cwd, f), None, _MS_BIND, None)
    mem = spec["memory_bytes"]
    if mem > 0:
        resource.setrlimit(resource.RLIMIT_DATA, (mem, mem))
    fsize = spec["max_file_bytes"]
    if fsize > 0:
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if level == "root":
        os.setgroups([])
        os.setgid(owner[1])
        os.setuid(owner[0])
    elif level == "userns":
        _drop_capabilities()
    env = dict(os.environ if base_env is None else base_env)
    env.update(HOME=home, TMPDIR=tmp, TEMP=tmp, TMP=tmp, MPLCONFIGDIR=os.path.join(home, ".mpl"),
               XDG_CACHE_HOME=os.path.join(home, ".cache"), JUPYTER_RUNTIME_DIR=tmp,
               IPYTHONDIR=os.path.join(home, ".ipython"), PYTHONDONTWRITEBYTECODE="1",
               # torch records its compile caches' folder in os.environ the first time it needs
               # one, so the grader's own environment may name a folder that is hidden here
               TORCHINDUCTOR_CACHE_DIR=os.path.join(tmp, "torchinductor"),
               TRITON_CACHE_DIR=os.path.join(tmp, "triton"))
    if level == "root":
        env.update(USER="nobody", LOGNAME="nobody")
    threads = int(spec.get("threads", 0) or 0)
    if threads > 0:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                   OPENBLAS_NUM_THREADS=str(threads))
    with open(os.path.join(kdir, "kernel.pid"), "w") as fh:
        fh.write(str(os.getpid()))
    return env


def main(argv: list[str] | None = None) -> None:
    """Entry point of the kernelspec: ``python -m convnets.grading.sandbox SPEC -- CONNECTION_FILE``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[1] != "--":
        sys.exit("usage: python -m convnets.grading.sandbox SPEC.json -- CONNECTION_FILE [KERNEL ARGS]")
    spec = json.loads(Path(argv[0]).read_text())
    connection_file, extra = argv[2], argv[3:]
    env = enter(spec, connection_file)
    os.execve(sys.executable, [sys.executable, "-m", "ipykernel_launcher", "-f", connection_file,
                               "--HistoryManager.hist_file=:memory:", *extra], env)


if __name__ == "__main__":
    main()
