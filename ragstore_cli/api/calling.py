"""How the API is called: settings resolved once per call, and the sync twin of every async verb.

Every verb of ragstore_cli.api is a coroutine function (`await api.export(...)`); ragstore_cli.api.sync
holds a blocking twin of each under the same name (`sync.export(...)`). A twin runs its coroutine with
asyncio.run, so it cannot work inside a running event loop (asyncio.run would refuse with a message
that names neither ragstore nor the fix): it refuses first, with one line saying what to call instead.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Awaitable, Callable, Coroutine, ParamSpec, TypeVar

from ragstore_cli.config import Settings, load_settings
from ragstore_cli.errors import UsageError

P = ParamSpec("P")
T = TypeVar("T")


def resolved(settings: Settings | None) -> Settings:
    """The settings a call uses: the ones given, else the environment's (env > .env > config.ini > default)."""
    return settings if settings is not None else load_settings()


def refuse_inside_a_loop(name: str) -> None:
    """A blocking call inside a running event loop would stall it (or, for asyncio.run, fail): refuse it."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise UsageError(f"ragstore_cli.api.sync.{name}() blocks, and this thread runs an event loop: "
                     f"use `await ragstore_cli.api.{name}(...)` there instead")


def blocking(verb: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """The sync twin of a coroutine function: run with asyncio.run, refused inside a running loop."""
    name = verb.__name__

    @functools.wraps(verb)
    def twin(*args: P.args, **kwargs: P.kwargs) -> T:
        refuse_inside_a_loop(name)
        return asyncio.run(verb(*args, **kwargs))

    return twin


def guarded(verb: Callable[P, T]) -> Callable[P, T]:
    """The sync twin of a verb that only works on local files: the plain call, refused inside a running
    loop like every twin (it would stall the loop: `await` the async form there)."""
    name = verb.__name__

    @functools.wraps(verb)
    def twin(*args: P.args, **kwargs: P.kwargs) -> T:
        refuse_inside_a_loop(name)
        return verb(*args, **kwargs)

    return twin


def off_loop(verb: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """The async form of a verb that only reads and writes local files: it runs in a worker thread, so
    the caller's event loop keeps serving its other tasks meanwhile."""

    @functools.wraps(verb)
    async def in_thread(*args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(verb, *args, **kwargs)

    return in_thread


def run_command(main: Coroutine[Any, Any, T]) -> T:
    """Run a verb's coroutine as the `ragstore` command does: under a guard that ends it soon after a
    server goes silent (RAGSTORE_COMMAND_TIMEOUT) and within 5 s of Ctrl-C (connect/liveness.py). It
    takes over SIGINT while it runs and may end the process on a second Ctrl-C: for command-line
    programs; a library caller wants the sync twins (plain asyncio.run) instead."""
    from ragstore_cli.connect import liveness

    return liveness.run(main)
