"""The one pump: every batch of a section from a reader into a writer, the next batch read while the
current one is written (the source fetches or decodes batch k+1 while the target takes batch k)."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

from ragstore_cli.backends.contract import Writer
from ragstore_cli.engine.observer import Observer
from ragstore_cli.records import Batch, Digest


async def _next(batches: AsyncIterator[Batch]) -> Batch | None:
    try:
        return await batches.__anext__()
    except StopAsyncIteration:
        return None


async def pump(key: str, batches: AsyncIterator[Batch], writer: Writer, observer: Observer,
               digest: Digest | None = None) -> int:
    """Write every batch; returns the number of records. `digest` (optional) is fed what was written."""
    count = number = 0
    batch = await _next(batches)
    while batch is not None:
        observer.point(f"batch:{key}:{number}")
        upcoming: asyncio.Future[Any] = asyncio.ensure_future(_next(batches))
        try:
            await writer.write(batch)
        except BaseException:
            await asyncio.gather(upcoming, return_exceptions=True)  # never close a running generator
            raise
        if digest is not None:
            digest.add(batch)
        count += len(batch)
        number += 1
        observer.progress(key, len(batch), 0)
        batch = await upcoming
    return count
