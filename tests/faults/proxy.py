"""A loopback TCP proxy that can freeze or cut the network between ragstore and a server.

- `freeze()`: stop forwarding in both directions and stop reading, while every socket stays open
  (and new connections are still accepted, then never answered): a stalled network, or a server
  that stopped answering. The peers' send buffers fill, as on a real stalled path.
- `thaw()`: forward again.
- `cut()`: reset every open connection and refuse new ones (the listening socket closes): the
  server disappeared. `restore()` listens again on the same port.

It runs its own event loop in a daemon thread, so a test can drive it while a child process
talks through it. Binds 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import threading


class FaultProxy:
    def __init__(self, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.host, self.target = host, target_port
        self.frozen = threading.Event()
        self.transports: set[asyncio.Transport] = set()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"proxy->{target_port}", daemon=True)
        self.thread.start()
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self.restore()

    # ------------------------------------------------------------------ control (test thread)
    def _call(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def restore(self) -> None:
        """Listen (again) on the proxy's port."""
        async def listen() -> None:
            self.server = await asyncio.start_server(self._client, self.host, self.port or 0, reuse_address=True)
            self.port = self.server.sockets[0].getsockname()[1]
        self._call(listen())

    def freeze(self) -> None:
        self.frozen.set()

    def thaw(self) -> None:
        self.frozen.clear()

    def cut(self) -> None:
        """Reset every connection and stop listening."""
        async def shut() -> None:
            if self.server is not None:
                self.server.close()
                self.server = None
            for transport in list(self.transports):
                transport.abort()
            self.transports.clear()
        self._call(shut())

    def close(self) -> None:
        self.thaw()
        self.cut()

        async def finish() -> None:  # the forwarding tasks of the connections just reset
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
        self._call(finish())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    # ------------------------------------------------------------------ forwarding (proxy thread)
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.target), 10)
        except (OSError, asyncio.TimeoutError):
            writer.transport.abort()
            return
        pair = (writer.transport, up_writer.transport)
        self.transports.update(pair)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)
        finally:
            for transport in pair:
                self.transports.discard(transport)
                transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            while self.frozen.is_set():  # hold what was read; read nothing more (the buffers fill)
                await asyncio.sleep(0.02)
            data = await reader.read(65536)
            if not data:
                break
            while self.frozen.is_set():
                await asyncio.sleep(0.02)
            writer.write(data)
            await writer.drain()
        writer.transport.abort()
