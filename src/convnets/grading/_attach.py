"""The kernelspec's stand-in when kernels come from the fork server (:mod:`convnets.grading.zygote`).

Run as ``python -S -I _attach.py SOCKET SPEC.json -- CONNECTION_FILE [ARGS]`` by jupyter_client
in place of the kernel. Standard library only (it starts in milliseconds). It sends the zygote
its working folder, environment and standard streams, forwards SIGINT, SIGTERM, SIGHUP and
SIGQUIT to the kernel, and exits as the kernel exited (by the same signal when it was killed),
so the grader reports a dead kernel exactly as with a kernel it started itself.
"""
import json
import os
import signal
import socket
import sys


def main() -> None:
    argv = sys.argv[1:]
    if len(argv) < 4 or argv[2] != "--":
        sys.exit("usage: _attach.py SOCKET SPEC.json -- CONNECTION_FILE [KERNEL ARGS]")
    sock_path, spec, connection_file, extra = argv[0], argv[1], argv[3], argv[4:]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(sock_path)
    req = {"cwd": os.getcwd(), "spec": os.path.abspath(spec), "connection_file": os.path.abspath(connection_file),
           "env": dict(os.environ), "extra": extra}
    socket.send_fds(sock, [json.dumps(req).encode() + b"\n"], [0, 1, 2])
    reader = sock.makefile("rb")
    pid = json.loads(reader.readline())["pid"]

    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except OSError:
            pass

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, forward)
    line = reader.readline()
    code = json.loads(line)["exit"] if line else 1
    if code < 0:  # killed by a signal: die of the same one
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


if __name__ == "__main__":
    main()
