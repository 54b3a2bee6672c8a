"""Every command ends soon after a server it uses goes silent, and within 5 s of Ctrl-C.

Why: a stopped, stalled or unreachable server answers nothing (a SIGSTOPped PostgreSQL, a network
that stops forwarding), so a COPY, a DELETE of a large workspace or a migration would wait forever,
and a statement timeout cannot tell such a server from one that is merely busy with a long
statement. So `run()` executes a command's coroutine under a `Guard`:

- every pool, connection, client and driver that connect/*.py hands out is registered (`watch`),
  with a probe of its server and a way to drop its connections at once;
- a watchdog probes each server in use on a connection of its own (every tenth of the timeout, at
  most every 5 s, once the command has run that long); a server silent for RAGSTORE_COMMAND_TIMEOUT
  minus an unwinding budget (a fifth of it, 1 to 8 s) is declared lost: its connections are dropped
  (every wait on them fails at once), the command is cancelled and unwinds within that budget, and it
  ends -- within RAGSTORE_COMMAND_TIMEOUT of the server's last answer -- with one line naming it;
- Ctrl-C cancels the command (its transactions roll back, ledgers stay for --resume); whatever still
  waits after a grace period has its connections dropped; a process still alive 5 s after the
  first Ctrl-C exits with 130 regardless (it leaves the state a SIGKILL would: resumable);
- a driver error that means "the connection is gone" ends the command as one line naming the server.

Outside `run()` (library use, tests) `watch` does nothing: no guard, no watchdog.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import signal
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Coroutine, Protocol, TypeVar

from ragstore_cli.connect import failures
from ragstore_cli.errors import ConnectionFailed, Interrupted

T = TypeVar("T")

INTERRUPT_GRACE = 2.5  # seconds a cancelled command gets to roll back before its connections are dropped
INTERRUPT_HARD_EXIT = 4.7  # seconds after the first Ctrl-C at which the process exits whatever it waits on
TICK = 0.25  # how often the watchdog looks at the clock
MAX_PROBE_INTERVAL = 5.0


def unwind_budget(limit: float) -> float:
    """The part of the limit kept for unwinding after a verdict, so that the command ENDS within it."""
    return min(max(limit * 0.2, 1.0), 8.0, limit / 2)


def probe_interval(limit: float) -> float:
    return min(max(limit / 10, 0.5), MAX_PROBE_INTERVAL)


class Probe(Protocol):
    """One server's round trip on a connection of the probe's own."""

    async def ping(self, timeout: float) -> None: ...

    async def close(self) -> None: ...


@dataclass
class _Server:
    kind: str
    target: str
    limit: float
    make_probe: Callable[[], Probe]
    users: list[tuple[Any, Callable[[Any], bool], Callable[[Any], None]]] = field(default_factory=list)
    last_answer: float = field(default_factory=time.monotonic)
    next_probe: float = 0.0
    asked: float | None = None  # when the first probe since the last answer was sent
    probe: Probe | None = None
    pinging: asyncio.Task[None] | None = None

    def in_use(self) -> bool:
        """True while any registered pool/connection/client of this server is still open."""
        alive = []
        for ref, is_open, drop in self.users:
            obj = ref()
            if obj is not None and is_open(obj):
                alive.append((ref, is_open, drop))
        self.users = alive
        return bool(alive)

    def drop(self) -> None:
        for ref, _is_open, drop in self.users:
            obj = ref()
            if obj is not None:
                try:
                    drop(obj)
                except Exception:  # noqa: BLE001 - dropping is best effort: the task is cancelled anyway
                    pass


_GUARD: contextvars.ContextVar["Guard | None"] = contextvars.ContextVar("ragstore_guard", default=None)


def watch(kind: str, target: str, limit: float, user: Any, *, make_probe: Callable[[], Probe],
          is_open: Callable[[Any], bool] = lambda _obj: True, drop: Callable[[Any], None] = lambda _obj: None) -> None:
    """Register `user` (a pool, connection, client or driver) of server `kind`/`target` with the
    running command's guard. `drop` closes its connections at once, without waiting on the server."""
    guard = _GUARD.get()
    if guard is None:
        return
    key = f"{kind}|{target}"
    server = guard.servers.get(key)
    if server is None:
        server = guard.servers[key] = _Server(kind, target, limit, make_probe)
    server.limit = min(server.limit, limit) if server.limit and limit else (server.limit or limit)
    if server.limit and not server.users:  # first probe once the command has used it that long
        server.next_probe = time.monotonic() + probe_interval(server.limit)
    try:
        ref: Any = weakref.ref(user)
    except TypeError:  # not weak-referenceable: keep it (the guard lives no longer than the command)
        ref = (lambda obj: lambda: obj)(user)
    server.users.append((ref, is_open, drop))


def silence_limit() -> float | None:
    """How long a server of the running command may stay silent before the command gives up (the
    part of RAGSTORE_COMMAND_TIMEOUT not kept for unwinding); None outside a guarded command."""
    guard = _GUARD.get()
    if guard is None:
        return None
    limits = [s.limit for s in guard.servers.values() if s.limit]
    return min(limit - unwind_budget(limit) for limit in limits) if limits else None


def set_resume_hint(hint: str) -> None:
    """What the user should run if the command now ends because a server was lost or on Ctrl-C."""
    guard = _GUARD.get()
    if guard is not None:
        guard.hint = hint


def _driver_kind(exc: BaseException) -> str | None:
    module = type(exc).__module__
    for kind, prefix in (("postgres", "asyncpg"), ("redis", "redis"), ("neo4j", "neo4j")):
        if module.startswith(prefix):
            return kind
    return None


def _means_lost(exc: BaseException) -> bool:
    """Does this driver/OS error say the connection or the server is gone (not a query error)?
    The kinds are connect/failures.py's; a timeout counts only from Redis, whose client raises it for a
    silent server (asyncpg's statement timeout is a statement's, said as such by the CLI)."""
    failure = failures.classify(exc)
    if failure is None:
        return False
    if failure.kind == failures.TIMEOUT:
        return _driver_kind(exc) == "redis"
    return failure.kind in (failures.LOST, failures.REFUSED, failures.DNS, failures.UNREACHABLE, failures.BUSY)


def server_error(exc: BaseException) -> ConnectionFailed | None:
    """A one-line ConnectionFailed naming the server, when `exc` means a connection was lost."""
    if isinstance(exc, ConnectionFailed) or not isinstance(exc, Exception) or not _means_lost(exc):
        return None
    kind = _driver_kind(exc)
    guard = _GUARD.get()
    servers = list(guard.servers.values()) if guard is not None else []
    matching = [s for s in servers if s.kind == kind] if kind else servers
    target = matching[0].target if len(matching) == 1 else None
    kind = kind or (matching[0].kind if len(matching) == 1 else "server")
    text = (str(exc).splitlines() or [""])[0][:200] or type(exc).__name__
    from ragstore_cli.redact import redact

    where = f" to {target}" if target else ""
    return ConnectionFailed(kind, redact(f"lost the connection{where} ({text})"), transient=True)


class Guard:
    """The watchdog and the Ctrl-C handling of one command (see the module docstring)."""

    def __init__(self) -> None:
        self.servers: dict[str, _Server] = {}
        self.hint: str | None = None
        self.verdict: ConnectionFailed | None = None
        self.interrupted = 0
        self.stop: asyncio.Future[None] | None = None
        self.task: asyncio.Task[Any] | None = None
        self.hard_exit: threading.Timer | None = None  # armed by the first Ctrl-C, never cancelled

    # ------------------------------------------------------------------ watchdog
    async def watchdog(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            for server in list(self.servers.values()):
                if not server.limit or not server.in_use():  # not in use: its silence does not count
                    server.last_answer, server.next_probe = now, now + probe_interval(server.limit or 1.0)
                    server.asked = None
                    continue
                interval = probe_interval(server.limit)
                # Lost: silent for the limit (less the unwinding budget), and a probe unanswered for an
                # interval at least (an event loop blocked for a while is not a silent server).
                if (now - server.last_answer > server.limit - unwind_budget(server.limit)
                        and server.asked is not None and now - server.asked >= interval):
                    self._lose(server)
                    return
                if now >= server.next_probe and (server.pinging is None or server.pinging.done()):
                    server.next_probe = now + interval
                    server.asked = now if server.asked is None else server.asked
                    timeout = min(max(server.limit / 3, 0.5), 10.0)
                    server.pinging = asyncio.ensure_future(self._ping(server, timeout))

    async def _ping(self, server: _Server, timeout: float) -> None:
        try:
            if server.probe is None:
                server.probe = server.make_probe()
            await asyncio.wait_for(server.probe.ping(timeout), timeout)
            server.last_answer, server.asked = time.monotonic(), None
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - no answer: the probe reconnects at the next round
            probe, server.probe = server.probe, None
            if probe is not None:
                await _quietly(probe.close(), 1.0)

    def _lose(self, server: _Server) -> None:
        from ragstore_cli.redact import redact

        silent = time.monotonic() - server.last_answer
        self.verdict = ConnectionFailed(server.kind, redact(
            f"{server.target} stopped answering (silent for {silent:.0f} s; RAGSTORE_COMMAND_TIMEOUT is "
            f"{server.limit:g} s): the server is stopped, stalled or unreachable"), transient=True)
        server.drop()
        if self.stop is not None and not self.stop.done():
            self.stop.set_result(None)

    # ------------------------------------------------------------------ Ctrl-C
    def on_interrupt(self) -> None:
        self.interrupted += 1
        if self.interrupted == 1:
            self.hard_exit = threading.Timer(INTERRUPT_HARD_EXIT, _hard_exit, args=(self.hint,))
            self.hard_exit.daemon = True
            self.hard_exit.start()
        else:
            self.drop_all()
        if self.stop is not None and not self.stop.done():
            self.stop.set_result(None)

    def drop_all(self) -> None:
        for server in self.servers.values():
            server.drop()

    # ------------------------------------------------------------------ the command
    async def run(self, main: Coroutine[Any, Any, T]) -> T:
        loop = asyncio.get_running_loop()
        self.stop = loop.create_future()
        self.task = asyncio.ensure_future(main)
        dog = asyncio.ensure_future(self.watchdog())
        try:
            await asyncio.wait({self.task, self.stop}, return_when=asyncio.FIRST_COMPLETED)
            if not self.task.done():
                await self._unwind()
            return self._outcome()
        finally:
            dog.cancel()
            await _quietly(asyncio.gather(dog, return_exceptions=True), 1.0)
            await self._close_probes()

    async def _unwind(self) -> None:
        """Cancel the command; drop every connection if it is still waiting after a grace period."""
        assert self.task is not None
        if self.interrupted:
            grace, last = INTERRUPT_GRACE, 1.0
        else:
            budget = unwind_budget(min(s.limit for s in self.servers.values() if s.limit))
            grace, last = budget * 0.5, budget * 0.2
        self.task.cancel()
        await asyncio.wait({self.task}, timeout=grace)
        if not self.task.done():
            self.drop_all()
            self.task.cancel()
            await asyncio.wait({self.task}, timeout=last)

    def _outcome(self) -> Any:
        assert self.task is not None
        if self.task.done() and not self.task.cancelled() and self.task.exception() is None:
            return self.task.result()  # it finished after all: that is the truth to report
        if self.interrupted:
            raise Interrupted("interrupted", hint=self.hint)
        if self.verdict is not None:
            self.verdict.hint = self.hint or "run the command again once the server answers"
            raise self.verdict
        if not self.task.done():  # pragma: no cover - _unwind gave up; the verdict covers it
            raise ConnectionFailed("server", "the command did not end after its connections were dropped")
        exc = self.task.exception() if not self.task.cancelled() else asyncio.CancelledError()
        lost = server_error(exc)
        if lost is not None:
            lost.hint = self.hint or "run the command again once the server answers"
            raise lost from None
        if isinstance(exc, ConnectionFailed) and exc.transient and self.hint and not exc.hint:
            exc.hint = self.hint  # a resume hint only where the server went away, not for a wrong setting
        raise exc

    async def _close_probes(self) -> None:
        for server in self.servers.values():
            if server.pinging is not None and not server.pinging.done():
                server.pinging.cancel()
            probe, server.probe = server.probe, None
            if probe is not None:
                await _quietly(probe.close(), 1.0)


async def _quietly(aw: Awaitable[Any], timeout: float) -> None:
    """Await a clean-up step for at most `timeout` seconds, ignoring its failure."""
    try:
        await asyncio.wait_for(aw, timeout)
    except (Exception, asyncio.TimeoutError):  # noqa: BLE001 - clean-up of something already failing
        pass


def _hard_exit(hint: str | None) -> None:
    """Ctrl-C was pressed 5 s ago and the command still runs: leave now (a resumable state, as after SIGKILL)."""
    try:
        sys.stderr.write("error: interrupted\n" + (f"hint: {hint}\n" if hint else ""))
        sys.stderr.flush()
    finally:
        os._exit(130)


def _quiet_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Leftover tasks and futures of an abandoned connection are expected here: no traceback."""
    logging.getLogger("ragstore.liveness").debug("asyncio: %s", context.get("message"), exc_info=context.get("exception"))


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run for a command, under a Guard (watchdog, Ctrl-C within 5 s, bounded teardown)."""
    guard = Guard()
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(_quiet_exception_handler)
    previous = None
    on_main_thread = threading.current_thread() is threading.main_thread()
    if on_main_thread:
        previous = signal.getsignal(signal.SIGINT)

        def on_sigint(_signum: int, _frame: Any) -> None:
            try:
                loop.call_soon_threadsafe(guard.on_interrupt)
            except RuntimeError:  # the loop is closing: leave as Python would
                raise KeyboardInterrupt from None

        signal.signal(signal.SIGINT, on_sigint)
    token = _GUARD.set(guard)
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(guard.run(main))
    finally:
        _GUARD.reset(token)
        try:
            _teardown(loop)
        finally:
            asyncio.set_event_loop(None)
            if on_main_thread:
                signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


def _teardown(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left and close the loop, each step bounded (a dead server must not hold exit)."""
    try:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=0.5))
        loop.run_until_complete(_quietly(loop.shutdown_asyncgens(), 0.5))
        loop.run_until_complete(_quietly(loop.shutdown_default_executor(), 1.0))
    finally:
        loop.close()
