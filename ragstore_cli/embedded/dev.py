"""`ragstore dev`: the embedded default — PostgreSQL + pgvector and a Bolt server in one data folder.

The Bolt server is FalkorDB (the default: no Java needed) or a real Neo4j Community (`graph="neo4j"`,
Java + Maven). State lives in `<data-dir>/dev-state.json`; the settings that point ragstore and
LightRAG at the servers are written to `<data-dir>/ragstore.env` with owner-only permissions (it
holds the passwords). Switching the graph server stops the other one; each keeps its own data.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragstore_cli.atomic import OWNER_ONLY, write_atomic
from ragstore_cli.embedded.falkordb import EmbeddedFalkorDB
from ragstore_cli.embedded.neo4j import EmbeddedNeo4j
from ragstore_cli.embedded.postgres import EmbeddedPostgres
from ragstore_cli.errors import UsageError

DEV_DATABASE = "lightrag"
ENV_MARKER = "# written by ragstore dev up"
GRAPH_SERVERS = ("falkordb", "neo4j")
DEFAULT_GRAPH = "falkordb"


@dataclass
class DevServers:
    data_dir: Path
    postgres: EmbeddedPostgres
    graph: EmbeddedFalkorDB | EmbeddedNeo4j
    others: tuple[EmbeddedFalkorDB | EmbeddedNeo4j, ...] = ()  # graph servers recorded but not chosen

    @property
    def graph_name(self) -> str:
        return _kind(self.graph)

    @property
    def env_file(self) -> Path:
        return self.data_dir / "ragstore.env"

    def env(self) -> dict[str, str]:
        values = {
            **self.postgres.env(database=DEV_DATABASE),
            **self.graph.env(),
            "LIGHTRAG_KV_STORAGE": "PGKVStorage",
            "LIGHTRAG_VECTOR_STORAGE": "PGVectorStorage",
            "LIGHTRAG_GRAPH_STORAGE": "Neo4JStorage",
            "LIGHTRAG_DOC_STATUS_STORAGE": "PGDocStatusStorage",
            "WORKING_DIR": str(self.data_dir / "rag_storage"),
        }
        return values

    def status(self) -> dict[str, Any]:
        return {
            "data_dir": str(self.data_dir),
            "env_file": str(self.env_file),
            "postgres": {"running": self.postgres.running(), "pid": self.postgres.pid(),
                         "host": self.postgres.host, "port": self.postgres.port},
            "bolt": {"server": self.graph_name, "running": self.graph.running(), "pid": self.graph.pid(),
                     "uri": self.graph.bolt_uri,
                     **({"redis_port": self.graph.port} if isinstance(self.graph, EmbeddedFalkorDB) else {})},
        }


def _state_file(data_dir: Path) -> Path:
    return data_dir / "dev-state.json"


def load(data_dir: Path) -> DevServers | None:
    """The servers recorded in `data_dir`, or None if `dev up` never ran there."""
    data_dir = data_dir.resolve()
    try:
        saved = json.loads(_state_file(data_dir).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {_state_file(data_dir)}: {exc}") from None
    postgres = EmbeddedPostgres(data_dir / "postgres", port=saved["postgres_port"], password=saved["postgres_password"],
                                socket_dir=Path(saved["socket_dir"]))
    graphs = _graph_servers(data_dir, saved)
    chosen = saved.get("graph", DEFAULT_GRAPH)
    return DevServers(data_dir, postgres, graphs[chosen], tuple(g for name, g in graphs.items() if name != chosen))


def _graph_servers(data_dir: Path, saved: dict[str, Any]) -> dict[str, EmbeddedFalkorDB | EmbeddedNeo4j]:
    """Every graph server the state records (FalkorDB in states written before the choice existed)."""
    found: dict[str, EmbeddedFalkorDB | EmbeddedNeo4j] = {}
    if "bolt_port" in saved:
        found["falkordb"] = EmbeddedFalkorDB(data_dir / "falkordb", port=saved["redis_port"], bolt_port=saved["bolt_port"])
    if "neo4j_port" in saved:
        found["neo4j"] = EmbeddedNeo4j(data_dir / "neo4j", password=saved["neo4j_password"], port=saved["neo4j_port"])
    return found


def _kind(server: EmbeddedFalkorDB | EmbeddedNeo4j) -> str:
    return "neo4j" if isinstance(server, EmbeddedNeo4j) else "falkordb"


def _new_graph(data_dir: Path, name: str) -> EmbeddedFalkorDB | EmbeddedNeo4j:
    if name == "neo4j":
        return EmbeddedNeo4j(data_dir / "neo4j", password=secrets.token_urlsafe(18))
    return EmbeddedFalkorDB(data_dir / "falkordb")


def up(data_dir: Path, graph: str | None = None) -> DevServers:
    """Start PostgreSQL and the graph server (`graph`: falkordb or neo4j; None keeps the one
    recorded, else FalkorDB), initialising on first use, and write the env file."""
    if graph is not None and graph not in GRAPH_SERVERS:
        raise UsageError(f"unknown graph server {graph!r}: choose one of {', '.join(GRAPH_SERVERS)}")
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o755)
    servers = load(data_dir)
    if servers is None:
        postgres = EmbeddedPostgres(data_dir / "postgres", password=secrets.token_urlsafe(18),
                                    socket_dir=data_dir / "sock" if len(str(data_dir)) < 80 else None)
        servers = DevServers(data_dir, postgres, _new_graph(data_dir, graph or DEFAULT_GRAPH))
    elif graph is not None and graph != servers.graph_name:
        known = {_kind(server): server for server in (servers.graph, *servers.others)}
        chosen = known.pop(graph, None) or _new_graph(data_dir, graph)
        servers = DevServers(data_dir, servers.postgres, chosen, tuple(known.values()))
    graph_was_running = servers.graph.running()
    if servers.graph_name == "neo4j":
        servers.graph.start()  # first: it is the one that can be refused (no Java, no Maven)
    try:
        servers.postgres.start()
        exists = servers.postgres.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DEV_DATABASE}'").strip()
        if not exists:
            servers.postgres.psql(f"CREATE DATABASE {DEV_DATABASE}")
        servers.postgres.psql("CREATE EXTENSION IF NOT EXISTS vector", database=DEV_DATABASE)
    except BaseException:
        if not graph_was_running:  # not recorded yet: `dev down` could not find it
            servers.graph.stop()
        raise
    for other in servers.others:
        other.stop()
    servers.graph.start()
    state: dict[str, Any] = {
        "postgres_port": servers.postgres.port,
        "postgres_password": servers.postgres.password,
        "socket_dir": str(servers.postgres.socket_dir),
        "graph": servers.graph_name,
    }
    for server in (servers.graph, *servers.others):
        if isinstance(server, EmbeddedNeo4j):
            state.update(neo4j_port=server.port, neo4j_password=server.password)
        else:
            state.update(redis_port=server.port, bolt_port=server.bolt_port)
    _write_private(_state_file(data_dir), json.dumps(state, indent=2))
    _write_private(servers.env_file, render_env(servers.env()))
    (data_dir / "rag_storage").mkdir(exist_ok=True)
    return servers


def down(data_dir: Path) -> DevServers | None:
    servers = load(data_dir)
    if servers is not None:
        for graph in (servers.graph, *servers.others):
            graph.stop()
        servers.postgres.stop()
    return servers


def render_env(values: dict[str, str]) -> str:
    lines = [ENV_MARKER] + [f"{key}={_quote(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def _quote(value: str) -> str:
    return value if value and all(c.isalnum() or c in "-_./:@" for c in value) else json.dumps(value)


def check_env_target(target: Path, *, force: bool) -> None:
    """Refuse (before anything starts) to replace a file that ragstore did not write."""
    if target.exists() and not force:
        try:
            first = target.read_text(encoding="utf-8").splitlines()[:1]
        except (OSError, UnicodeDecodeError):
            first = []
        if first != [ENV_MARKER]:
            raise UsageError(f"{target} exists and was not written by ragstore; pass --force to replace it")


def write_env_copy(servers: DevServers, target: Path, *, force: bool) -> None:
    """Copy the env lines to `target` (e.g. ./.env)."""
    check_env_target(target, force=force)
    _write_private(target, render_env(servers.env()))


def _write_private(path: Path, text: str) -> None:
    write_atomic(path, text, mode=OWNER_ONLY)  # it holds the dev servers' passwords
