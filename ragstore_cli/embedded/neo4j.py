"""A real Neo4j Community 5.26 server on loopback, run by ragstore's launcher (neo4j_launcher/).

Java and Maven do the work (see neo4j_runtime): the launcher embeds Neo4j with only its Bolt
connector, bound to 127.0.0.1, authentication on (user `neo4j`, the password given here, passed
through the environment), data and logs under `data_dir` and kept across restarts. With TLS files it
serves Bolt over TLS only (`bolt+s://localhost:PORT`), for certificate checks against the real server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from ragstore_cli.atomic import write_atomic
from ragstore_cli.embedded import neo4j_runtime
from ragstore_cli.embedded.postgres import TLSFiles, free_port, pid_from_file
from ragstore_cli.errors import OperationFailed, UsageError
from ragstore_cli.procs import pid_alive

READY, FAILED = "RAGSTORE_NEO4J_READY", "RAGSTORE_NEO4J_FAILED"
USER = "neo4j"
# The flags Neo4j's own launch script gives a 5.x server on Java 17+ that an embedded one needs too.
JVM_FLAGS = ("-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError", "-XX:-OmitStackTraceInFastThrow",
             "-Dio.netty.tryReflectionSetAccessible=true", "-Dlog4j2.disable.jmx=true",
             "--add-opens=java.base/java.nio=ALL-UNNAMED", "--add-opens=java.base/java.io=ALL-UNNAMED",
             "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED")


@dataclass
class EmbeddedNeo4j:
    """One Neo4j Community server: Bolt on `host:port`, everything else off."""

    data_dir: Path
    password: str
    port: int = 0
    host: str = "127.0.0.1"
    tls: TLSFiles | None = None
    heap: str = "512m"
    page_cache: str = "128m"

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.port = self.port or free_port(self.host)
        if len(self.password) < 8:
            raise UsageError("a Neo4j password needs at least 8 characters")

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "neo4j.pid"

    @property
    def log_file(self) -> Path:
        """The launcher's output; Neo4j's own logs are in `logs/` beside it."""
        return self.data_dir / "launcher.log"

    @property
    def advertised_host(self) -> str:
        # The test certificate names `localhost` only; neo4j:// routing hands out this name.
        return "localhost" if self.tls else self.host

    @property
    def bolt_uri(self) -> str:
        return f"{'bolt+s' if self.tls else 'bolt'}://{self.advertised_host}:{self.port}"

    def pid(self) -> int | None:
        return pid_from_file(self.pidfile)

    def running(self) -> bool:
        """The recorded pid is alive and is this launcher (not a pid reused by another program)."""
        pid = self.pid()
        if not pid_alive(pid):
            return False
        try:
            return neo4j_runtime.MAIN_CLASS.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return True

    def config(self) -> dict[str, str]:
        """neo4j.conf settings: Bolt only, loopback only, small memory, no phoning home."""
        address = f"{self.host}:{self.port}"
        values = {
            "server.bolt.enabled": "true",
            "server.bolt.listen_address": address,
            "server.bolt.advertised_address": f"{self.advertised_host}:{self.port}",
            "server.http.enabled": "false",
            "server.https.enabled": "false",
            "dbms.security.auth_enabled": "true",
            "dbms.usage_report.enabled": "false",
            "server.memory.pagecache.size": self.page_cache,
            "db.tx_log.preallocate": "false",  # else 256 MB of empty log per database
            "db.tx_log.rotation.size": "64M",
            "db.tx_log.rotation.retention_policy": "2 files",
            "server.bolt.tls_level": "REQUIRED" if self.tls else "DISABLED",
        }
        if self.tls:
            folder = self.data_dir / "certificates" / "bolt"
            values.update({
                "dbms.ssl.policy.bolt.enabled": "true",
                "dbms.ssl.policy.bolt.base_directory": str(folder),
                "dbms.ssl.policy.bolt.private_key": str(folder / "private.key"),
                "dbms.ssl.policy.bolt.public_certificate": str(folder / "public.crt"),
                "dbms.ssl.policy.bolt.client_auth": "NONE",
            })
        return values

    def _install_certificates(self) -> None:
        """The certificate chain as given, the key as unencrypted PKCS#8 (what Neo4j reads)."""
        folder = self.data_dir / "certificates" / "bolt"
        for sub in ("trusted", "revoked"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        key = serialization.load_pem_private_key(Path(self.tls.key_file).read_bytes(), password=None)
        pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
        write_atomic(folder / "private.key", pkcs8, mode=0o600)
        write_atomic(folder / "public.crt", Path(self.tls.cert_file).read_bytes(), mode=0o644)

    def start(self, timeout: float = 240) -> None:
        """Start in the background (a session of its own) and wait until Bolt serves the database."""
        if self.running():
            return
        runtime = neo4j_runtime.prepare()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.tls:
            self._install_certificates()
        conf = self.data_dir / "neo4j.conf"
        write_atomic(conf, "".join(f"{k}={v}\n" for k, v in self.config().items()).encode(), mode=0o600)
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        cmd = [runtime.java, f"-Xmx{self.heap}", *JVM_FLAGS, "-cp", runtime.classpath, neo4j_runtime.MAIN_CLASS,
               str(self.data_dir / "home"), str(conf)]
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       cwd=self.data_dir, start_new_session=True,
                                       env={**os.environ, "RAGSTORE_NEO4J_PASSWORD": self.password})
        write_atomic(self.pidfile, f"{process.pid}\n".encode(), mode=0o644)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            said = _read_from(self.log_file, offset)
            if READY in said:
                return
            failed = next((line for line in said.splitlines() if line.startswith(FAILED)), None)
            if failed or process.poll() is not None:
                self._kill(process)
                detail = failed[len(FAILED):].strip() if failed else _last_line(said) or f"exit code {process.returncode}"
                raise OperationFailed(f"neo4j did not start: {detail[:300]} (log: {self.log_file})")
            time.sleep(0.2)
        self._kill(process)
        raise OperationFailed(f"neo4j did not serve Bolt on port {self.port} within {timeout:g} s (log: {self.log_file})")

    def _kill(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.kill()
        process.wait(30)
        self.pidfile.unlink(missing_ok=True)

    def stop(self, timeout: float = 90) -> None:
        """SIGTERM (Neo4j checkpoints and closes its stores), then SIGKILL if it does not exit in time."""
        pid = self.pid()
        if pid is None or not self.running():
            self.pidfile.unlink(missing_ok=True)
            return
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 10.0)
        self.pidfile.unlink(missing_ok=True)

    def env(self) -> dict[str, str]:
        """LightRAG-compatible variables pointing at this server."""
        return {"NEO4J_URI": self.bolt_uri, "NEO4J_USERNAME": USER, "NEO4J_PASSWORD": self.password}


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait until every thread of `pid` has exited (and reap it if it is our child).

    Not pid_alive(): a JVM's main thread is a zombie while its other threads still shut down."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:  # not ours: gone once its parent (init) has reaped it
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)




def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read(1 << 20).decode("utf-8", "replace")
    except OSError:
        return ""


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
