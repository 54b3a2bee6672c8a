"""Fault hooks that live in a ragstore CHILD process only (never in the test process).

Configured by environment variables, installed before the CLI runs:

- FAULTWRAP_TARGETS  comma list of `module:Qualified.name` (functions or methods, sync or async);
                     every call to any of them counts, in one sequence (1, 2, 3, ...);
- FAULTWRAP_AT       act at call number N (absent: only count);
- FAULTWRAP_MODE     `before` the call, `during` it (async: at its first suspension, i.e. while it
                     waits on a server; sync: from a timer thread), or `after` it returned;
- FAULTWRAP_ACTION   `kill` (SIGKILL this process, the default) or `pause` (write `<dir>/paused`,
                     then wait, bounded, for `<dir>/go` -- the test disturbs a server meanwhile);
- FAULTWRAP_PAUSE_DIR  the folder for `pause`;
- FAULTWRAP_SET      comma list of `module:NAME=integer`: module constants set before the run
                     (e.g. a smaller batch size, so a small data set still spans many batches);
- FAULTWRAP_TRACE    a file: in count mode `{"calls": n, "names": [...]}` written at exit; in act
                     mode `{"at": n, "name": ..., "mode": ...}` written just before acting;
- FAULTWRAP_POINT    SIGKILL at a named point of the engine's run (its Observer.point): `commit:<section>`,
                     `batch:<section>:<n>`, `swap:before`, `swap:during`; `inside:<section>:<n>` kills at
                     the next event-loop turn after `batch:<section>:<n>`, i.e. while that batch's write
                     waits on the server (inside a COPY for PostgreSQL).

Exec entry point (a fresh interpreter):  python -c "import faultwrap; faultwrap.main()" ARGS...
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import importlib
import inspect
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

_state: dict[str, Any] = {"calls": 0, "names": [], "installed": False, "flushed": False}


def _kill_now() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(10)  # never reached


def _write(path: str | None, data: dict[str, Any]) -> None:
    if not path:
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _pause(name: str) -> None:
    folder = Path(os.environ["FAULTWRAP_PAUSE_DIR"])
    (folder / "paused").write_text(name)
    deadline = time.monotonic() + float(os.environ.get("FAULTWRAP_PAUSE_MAX", "60"))
    while not (folder / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def _act(number: int, name: str, when: str) -> None:
    """Called around every hooked call (`number`: its place in the sequence); acts at the configured one."""
    at, want = _state["at"], _state["mode"]
    if at is None or number != at or when != want:
        return
    _write(os.environ.get("FAULTWRAP_TRACE"), {"at": at, "name": name, "mode": want,
                                              "action": _state["action"]})
    if _state["action"] == "pause":
        _pause(name)
        return
    if when == "during":
        try:
            asyncio.get_running_loop().call_soon(_kill_now)
            return
        except RuntimeError:
            threading.Timer(0.002, _kill_now).start()
            return
    _kill_now()


def _count(name: str) -> int:
    _state["calls"] += 1
    if _state["at"] is None:
        _state["names"].append(name)
    return _state["calls"]


def _wrap(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def async_hooked(*args: Any, **kwargs: Any) -> Any:
            number = _count(name)
            _act(number, name, "before")
            _act(number, name, "during")
            result = await fn(*args, **kwargs)
            _act(number, name, "after")
            return result
        return async_hooked

    @functools.wraps(fn)
    def hooked(*args: Any, **kwargs: Any) -> Any:
        number = _count(name)
        _act(number, name, "before")
        _act(number, name, "during")
        result = fn(*args, **kwargs)
        _act(number, name, "after")
        return result
    return hooked


def _resolve(target: str) -> tuple[Any, str, Any]:
    module_name, _, qualname = target.partition(":")
    owner: Any = importlib.import_module(module_name)
    parts = qualname.split(".")
    for part in parts[:-1]:
        owner = getattr(owner, part)
    raw = inspect.getattr_static(owner, parts[-1])
    return owner, parts[-1], raw


def install() -> None:
    """Hook every FAULTWRAP_TARGETS entry (idempotent); counting starts at zero."""
    if _state["installed"]:
        return
    _state["installed"] = True
    at = os.environ.get("FAULTWRAP_AT")
    _state["at"] = int(at) if at else None
    _state["mode"] = os.environ.get("FAULTWRAP_MODE", "before")
    _state["action"] = os.environ.get("FAULTWRAP_ACTION", "kill")
    for assignment in filter(None, (t.strip() for t in os.environ.get("FAULTWRAP_SET", "").split(","))):
        where, _, value = assignment.partition("=")
        module_name, _, attr = where.partition(":")
        setattr(importlib.import_module(module_name), attr, int(value))
    for target in filter(None, (t.strip() for t in os.environ.get("FAULTWRAP_TARGETS", "").split(","))):
        owner, attr, raw = _resolve(target)
        name = target.split(":", 1)[1]
        if isinstance(raw, staticmethod):
            setattr(owner, attr, staticmethod(_wrap(raw.__func__, name)))
        elif isinstance(raw, classmethod):
            setattr(owner, attr, classmethod(_wrap(raw.__func__, name)))
        else:
            setattr(owner, attr, _wrap(raw, name))
    point = os.environ.get("FAULTWRAP_POINT")
    if point:
        _kill_at_point(point)
    atexit.register(flush)


def _kill_at_point(point: str) -> None:
    """Wrap the engine's Observer.point (every observer inherits it) to SIGKILL at `point`."""
    from ragstore_cli.engine.observer import Observer

    original = Observer.point
    soon = point.startswith("inside:")
    want = "batch:" + point[len("inside:"):] if soon else point

    @functools.wraps(original)
    def point_hook(self: Any, name: str) -> None:
        if name == want:
            if soon:
                asyncio.get_running_loop().call_soon(_kill_now)
            else:
                _kill_now()
        original(self, name)

    Observer.point = point_hook  # type: ignore[method-assign]


def flush() -> None:
    """Write the count trace (count mode); called at exit."""
    if _state["flushed"] or _state.get("at") is not None:
        return
    _state["flushed"] = True
    _write(os.environ.get("FAULTWRAP_TRACE"), {"calls": _state["calls"], "names": _state["names"]})


def main() -> None:
    """`python -c "import faultwrap; faultwrap.main()" ARGS`: the ragstore CLI with hooks installed."""
    install()
    from ragstore_cli.cli.app import main as cli_main

    sys.argv = ["ragstore", *sys.argv[1:]]
    cli_main()
