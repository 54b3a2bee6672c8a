"""A fork server: one interpreter with ragstore already imported forks a child per command.

Starting a fresh interpreter and importing ragstore costs ~1 s of CPU; a forked child of this
pre-warmed process starts in milliseconds, so hundreds of kill points stay affordable. Each child
is a real process (its own pid, SIGKILL-able alone) that runs the same CLI entry point as
`python -m ragstore_cli`, with its own environment, working directory, stdout/stderr files and
fault hooks (faultwrap). The zygote itself never opens a connection or an event loop.

Protocol (JSON lines): request {"argv", "env", "cwd", "stdout", "stderr", "fsize"?} on stdin;
optional "kill_after" (seconds: the zygote SIGKILLs the child then);
replies {"pid"} when the child started, then {"pid", "code"} when it ended (code < 0: signal).
"""

from __future__ import annotations

import json
import os
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))


def prewarm() -> None:
    import importlib

    for name in ("ragstore_cli.cli.app", "ragstore_cli.engine", "ragstore_cli.archive",
                 "ragstore_cli.backends.files", "ragstore_cli.backends.files.nano",
                 "ragstore_cli.backends.postgres", "ragstore_cli.backends.neo4j",
                 "ragstore_cli.engine.copy", "ragstore_cli.schema.api", "ragstore_cli.coordination",
                 "asyncpg", "neo4j"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def child(request: dict) -> None:
    code = 1
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out, fd)
            os.close(out)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        if request.get("fsize"):
            import resource

            resource.setrlimit(resource.RLIMIT_FSIZE, (request["fsize"], request["fsize"]))
        import faultwrap

        faultwrap.install()
        from ragstore_cli.cli.app import main

        sys.argv = ["ragstore", *request["argv"]]
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        import faultwrap as fw

        fw.flush()
    except BaseException:  # noqa: BLE001 - reported on the child's stderr
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def wait(pid: int, kill_after: float | None) -> int:
    """waitpid; with `kill_after`, SIGKILL the child once that many seconds passed (while it is
    still unreaped, so the pid is certainly still ours)."""
    if kill_after is None:
        return os.waitpid(pid, 0)[1]
    import signal
    import time

    deadline = time.monotonic() + kill_after
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            return os.waitpid(pid, 0)[1]
        time.sleep(0.002)


def main() -> None:
    sys.path.insert(0, HERE)
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    prewarm()
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            proto = None  # the child must never write on the protocol channel
            child(request)
        proto.write(json.dumps({"pid": pid}) + "\n")
        status = wait(pid, request.get("kill_after"))
        proto.write(json.dumps({"pid": pid, "code": os.waitstatus_to_exitcode(status)}) + "\n")


if __name__ == "__main__":
    main()
