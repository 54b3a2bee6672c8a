"""Settings an existing LightRAG deployment already has, resolved with their provenance.

Names are LightRAG's own (env variables and `config.ini` sections). Precedence, highest first:
command-line flag > process environment > `.env` file > `config.ini` > built-in default.
Every value is parsed and validated here, so a bad value fails once, early, naming its variable.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from dotenv import dotenv_values

from ragstore_cli.errors import ConfigError, UsageError
from ragstore_cli.redact import MASK, register_secret, register_uri_password, uri_password
from ragstore_cli.workspace import Workspace, validate_workspace

KV_CLASSES = {"JsonKVStorage", "RedisKVStorage", "PGKVStorage", "MongoKVStorage", "OpenSearchKVStorage"}
VECTOR_CLASSES = {
    "NanoVectorDBStorage", "NoopVectorDBStorage", "FaissVectorDBStorage", "PGVectorStorage",
    "MilvusVectorDBStorage", "QdrantVectorDBStorage", "MongoVectorDBStorage", "OpenSearchVectorDBStorage",
}
GRAPH_CLASSES = {
    "NetworkXStorage", "Neo4JStorage", "PGGraphStorage", "PGTableGraphStorage", "MongoGraphStorage",
    "MemgraphStorage", "OpenSearchGraphStorage",
}
DOC_STATUS_CLASSES = {
    "JsonDocStatusStorage", "RedisDocStatusStorage", "PGDocStatusStorage", "MongoDocStatusStorage",
    "OpenSearchDocStatusStorage",
}
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
VECTOR_INDEX_TYPES = ("HNSW", "HNSW_HALFVEC", "IVFFLAT", "VCHORDRQ")
LOCK_BACKENDS = ("auto", "memory", "file", "postgres", "redis")

#: Where a value can come from; a file given with --env-file is named as `--env-file <path>`.
SOURCES = ("flag", "env", ".env", "--env-file", "config.ini", "default")


# ---------------------------------------------------------------- parsers (raise ValueError)

def _int(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"expected an integer, got {raw!r}") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(f"{value} is out of range [{lo}, {hi}]")
        return value
    return parse


def _float(lo: float = 0.0) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
        if value < lo:
            raise ValueError(f"{value} must be at least {lo}")
        return value
    return parse


def _bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _choice(options: tuple[str, ...] | set[str], *, fold: Callable[[str], str] = str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = fold(raw.strip())
        if value not in options:
            raise ValueError(f"unknown value {raw!r}; expected one of: {', '.join(sorted(options))}")
        return value
    return parse


def _existing_file(raw: str) -> str:
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ValueError(f"file {raw!r} does not exist")
    if not os.access(path, os.R_OK):
        raise ValueError(f"file {raw!r} is not readable")
    return str(path)


def _text(raw: str) -> str:
    return raw


def _key_values(raw: str) -> dict[str, str]:
    """LightRAG's `k=v&k2=v2` server-settings syntax."""
    result: dict[str, str] = {}
    for part in filter(None, raw.split("&")):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected k=v&k2=v2, got {raw!r}")
        result[key.strip()] = value.strip()
    return result


def _workspace(raw: str) -> Workspace:
    """A workspace name, checked here once (workspace.py) so every backend can trust it."""
    try:
        return validate_workspace(raw)
    except UsageError as exc:
        raise ValueError(str(exc)) from None


def _workspace_override(raw: str) -> Workspace | None:
    """A backend's own workspace override; blank means "use WORKSPACE", as in LightRAG."""
    return _workspace(raw.strip()) if raw.strip() else None


@dataclass(frozen=True)
class Spec:
    """One setting: its LightRAG env name, config.ini location, default and parser, and the group
    attribute it is read through (`settings.<group>.<attr>`)."""

    env: str
    default: Any
    parse: Callable[[str], Any] = _text
    ini: tuple[str, str] | None = None
    secret: bool = False
    doc: str = ""
    group: str = ""
    attr: str = ""


_SPEC = "ragstore_spec"


def _setting(env: str, default: Any, parse: Callable[[str], Any] = _text, ini: tuple[str, str] | None = None,
             **kw: Any) -> Any:
    """A field of a settings group that declares its env variable, default and parser in one place
    (a secret stays out of the group's repr)."""
    return field(default=default, repr=not kw.get("secret", False),
                 metadata={_SPEC: Spec(env, default, parse, ini, **kw)})


def _pg(env: str, key: str, default: Any, parse: Callable[[str], Any] = _text, **kw: Any) -> Any:
    return _setting(env, default, parse, ("postgres", key), **kw)


def _neo(env: str, key: str, default: Any, parse: Callable[[str], Any] = _text, **kw: Any) -> Any:
    return _setting(env, default, parse, ("neo4j", key), **kw)


def _redis(env: str, key: str, default: Any, parse: Callable[[str], Any] = _text, **kw: Any) -> Any:
    return _setting(env, default, parse, ("redis", key), **kw)


def _own(env: str, key: str, default: Any, parse: Callable[[str], Any] = _text, **kw: Any) -> Any:
    return _setting(env, default, parse, ("ragstore", key), **kw)


@dataclass(frozen=True)
class LightragSettings:
    """Where LightRAG keeps its files, its default workspace and the storage class of each role."""

    working_dir: str = _setting("WORKING_DIR", "./rag_storage", doc="LightRAG working directory")
    workspace: Workspace = _setting("WORKSPACE", Workspace(""), _workspace,
                                    doc="workspace (subfolder / PG workspace / Neo4j label)")
    kv_storage: str = _setting("LIGHTRAG_KV_STORAGE", "JsonKVStorage", _choice(KV_CLASSES))
    vector_storage: str = _setting("LIGHTRAG_VECTOR_STORAGE", "NanoVectorDBStorage", _choice(VECTOR_CLASSES))
    graph_storage: str = _setting("LIGHTRAG_GRAPH_STORAGE", "NetworkXStorage", _choice(GRAPH_CLASSES))
    doc_status_storage: str = _setting("LIGHTRAG_DOC_STATUS_STORAGE", "JsonDocStatusStorage",
                                       _choice(DOC_STATUS_CLASSES))


@dataclass(frozen=True)
class EmbeddingSettings:
    """The embedding model and dimension LightRAG's vectors were made with."""

    model: str | None = _setting("EMBEDDING_MODEL", None)
    dim: int | None = _setting("EMBEDDING_DIM", None, _int(1, 65535))


@dataclass(frozen=True)
class PostgresSettings:
    """LightRAG's POSTGRES_* variables / `[postgres]` section."""

    host: str = _pg("POSTGRES_HOST", "host", "localhost")
    port: int = _pg("POSTGRES_PORT", "port", 5432, _int(1, 65535))
    user: str = _pg("POSTGRES_USER", "user", "postgres")
    password: str | None = _pg("POSTGRES_PASSWORD", "password", None, secret=True)
    database: str = _pg("POSTGRES_DATABASE", "database", "postgres")
    workspace: Workspace | None = _pg("POSTGRES_WORKSPACE", "workspace", None, _workspace_override)
    max_connections: int = _pg("POSTGRES_MAX_CONNECTIONS", "max_connections", 50, _int(1, 10000))
    ssl_mode: str | None = _pg("POSTGRES_SSL_MODE", "ssl_mode", None, _choice(SSL_MODES, fold=str.lower))
    ssl_cert: str | None = _pg("POSTGRES_SSL_CERT", "ssl_cert", None, _existing_file)
    ssl_key: str | None = _pg("POSTGRES_SSL_KEY", "ssl_key", None, _existing_file)
    ssl_root_cert: str | None = _pg("POSTGRES_SSL_ROOT_CERT", "ssl_root_cert", None, _existing_file)
    ssl_crl: str | None = _pg("POSTGRES_SSL_CRL", "ssl_crl", None, _existing_file)
    vector_index_type: str = _pg("POSTGRES_VECTOR_INDEX_TYPE", "vector_index_type", "HNSW",
                                 _choice(VECTOR_INDEX_TYPES, fold=str.upper))
    hnsw_m: int = _pg("POSTGRES_HNSW_M", "hnsw_m", 16, _int(2, 100))
    hnsw_ef: int = _pg("POSTGRES_HNSW_EF", "hnsw_ef", 64, _int(4, 1000))
    ivfflat_lists: int = _pg("POSTGRES_IVFFLAT_LISTS", "ivfflat_lists", 100, _int(1, 32768))
    server_settings: dict[str, str] | None = _pg("POSTGRES_SERVER_SETTINGS", "server_options", None, _key_values)
    statement_cache_size: int | None = _pg("POSTGRES_STATEMENT_CACHE_SIZE", "statement_cache_size", None,
                                           _int(0, 100000))
    connection_retries: int = _pg("POSTGRES_CONNECTION_RETRIES", "connection_retries", 10, _int(1, 100))
    connection_retry_backoff: float = _pg("POSTGRES_CONNECTION_RETRY_BACKOFF", "connection_retry_backoff", 3.0,
                                          _float(0.0))
    connection_retry_backoff_max: float = _pg("POSTGRES_CONNECTION_RETRY_BACKOFF_MAX", "connection_retry_backoff_max",
                                              30.0, _float(0.0))
    pool_close_timeout: float = _pg("POSTGRES_POOL_CLOSE_TIMEOUT", "pool_close_timeout", 5.0, _float(0.0))


@dataclass(frozen=True)
class Neo4jSettings:
    """LightRAG's NEO4J_* variables / `[neo4j]` section."""

    uri: str | None = _neo("NEO4J_URI", "uri", None)
    username: str | None = _neo("NEO4J_USERNAME", "username", None)
    password: str | None = _neo("NEO4J_PASSWORD", "password", None, secret=True)
    database: str | None = _neo("NEO4J_DATABASE", "database", None)
    workspace: Workspace | None = _neo("NEO4J_WORKSPACE", "workspace", None, _workspace_override)
    max_connection_pool_size: int = _neo("NEO4J_MAX_CONNECTION_POOL_SIZE", "max_connection_pool_size", 100,
                                         _int(1, 100000))
    connection_timeout: float = _neo("NEO4J_CONNECTION_TIMEOUT", "connection_timeout", 30.0, _float(0.0))
    connection_acquisition_timeout: float = _neo("NEO4J_CONNECTION_ACQUISITION_TIMEOUT",
                                                 "connection_acquisition_timeout", 30.0, _float(0.0))
    max_transaction_retry_time: float = _neo("NEO4J_MAX_TRANSACTION_RETRY_TIME", "max_transaction_retry_time", 30.0,
                                             _float(0.0))
    max_connection_lifetime: float = _neo("NEO4J_MAX_CONNECTION_LIFETIME", "max_connection_lifetime", 300.0,
                                          _float(0.0))
    liveness_check_timeout: float = _neo("NEO4J_LIVENESS_CHECK_TIMEOUT", "liveness_check_timeout", 30.0, _float(0.0))
    keep_alive: bool = _neo("NEO4J_KEEP_ALIVE", "keep_alive", True, _bool)


@dataclass(frozen=True)
class RedisSettings:
    """LightRAG's REDIS_* variables / `[redis]` section."""

    uri: str = _redis("REDIS_URI", "uri", "redis://localhost:6379")
    workspace: Workspace | None = _redis("REDIS_WORKSPACE", "workspace", None, _workspace_override)
    max_connections: int = _redis("REDIS_MAX_CONNECTIONS", "max_connections", 200, _int(1, 100000))
    socket_timeout: float = _redis("REDIS_SOCKET_TIMEOUT", "socket_timeout", 30.0, _float(0.0))
    connect_timeout: float = _redis("REDIS_CONNECT_TIMEOUT", "connect_timeout", 10.0, _float(0.0))
    retry_attempts: int = _redis("REDIS_RETRY_ATTEMPTS", "retry_attempts", 3, _int(0, 100))


@dataclass(frozen=True)
class RagstoreSettings:
    """ragstore's own RAGSTORE_* variables / `[ragstore]` section."""

    lock_backend: str = _own("RAGSTORE_LOCK_BACKEND", "lock_backend", "auto", _choice(LOCK_BACKENDS, fold=str.lower))
    lock_timeout: float = _own("RAGSTORE_LOCK_TIMEOUT", "lock_timeout", 30.0, _float(0.0))
    # How long a server a command uses may stay silent (no answer to the command's probe, no progress
    # on a COPY) before the command gives up with one line naming it (connect/liveness.py); also the
    # bound on connection retries and on ledger and lock statements. 0 = wait forever.
    command_timeout: float = _own("RAGSTORE_COMMAND_TIMEOUT", "command_timeout", 60.0, _float(0.0))


#: The attribute of Settings each group hangs off, in `config show` order.
GROUPS: dict[str, type] = {
    "lightrag": LightragSettings, "embedding": EmbeddingSettings, "postgres": PostgresSettings,
    "neo4j": Neo4jSettings, "redis": RedisSettings, "ragstore": RagstoreSettings,
}
SPECS: tuple[Spec, ...] = tuple(
    replace(f.metadata[_SPEC], group=group, attr=f.name) for group, cls in GROUPS.items() for f in fields(cls)
)
SPEC_BY_ENV = {spec.env: spec for spec in SPECS}


@dataclass(frozen=True)
class Setting:
    """A resolved value and where it came from."""

    name: str
    value: Any
    source: str
    secret: bool = False

    def __repr__(self) -> str:  # a secret's value never reaches a log line or a traceback through repr
        shown = MASK if self.secret and self.value is not None else repr(self.value)
        return f"Setting({self.name!r}, {shown}, {self.source!r})"

    @property
    def display(self) -> str:
        if self.value is None:
            return ""
        if self.secret:
            return MASK
        if isinstance(self.value, dict):
            return "&".join(f"{k}={v}" for k, v in self.value.items())
        return str(self.value)


@dataclass
class Settings:
    """Every setting ragstore knows, resolved: read through the typed groups (`settings.postgres.port`);
    `values` keeps each one's provenance for `config show`."""

    values: dict[str, Setting]
    cwd: Path = field(default_factory=Path.cwd)
    lightrag: LightragSettings = field(init=False, repr=False, compare=False)
    embedding: EmbeddingSettings = field(init=False, repr=False, compare=False)
    postgres: PostgresSettings = field(init=False, repr=False, compare=False)
    neo4j: Neo4jSettings = field(init=False, repr=False, compare=False)
    redis: RedisSettings = field(init=False, repr=False, compare=False)
    ragstore: RagstoreSettings = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for group, cls in GROUPS.items():
            setattr(self, group, cls(**{spec.attr: self.values[spec.env].value
                                        for spec in SPECS if spec.group == group}))

    def source(self, name: str) -> str:
        return self.values[name].source

    def is_set(self, name: str) -> bool:
        """True when the value came from anywhere but the built-in default."""
        return self.values[name].source != "default"

    def rows(self) -> list[Setting]:
        return [self.values[spec.env] for spec in SPECS]

    # derived views ------------------------------------------------------------
    @property
    def working_dir(self) -> Path:
        return (self.cwd / Path(self.lightrag.working_dir).expanduser()).resolve()

    @property
    def storage_classes(self) -> dict[str, str]:
        return {
            "kv": self.lightrag.kv_storage,
            "vector": self.lightrag.vector_storage,
            "graph": self.lightrag.graph_storage,
            "doc_status": self.lightrag.doc_status_storage,
        }

    def with_overrides(self, overrides: Mapping[str, Any]) -> "Settings":
        """A copy with some values replaced (already parsed), marked as coming from a flag."""
        values = dict(self.values)
        for name, value in overrides.items():
            spec = SPEC_BY_ENV[name]
            values[name] = Setting(name, value, "flag", spec.secret)
        return Settings(values, self.cwd)


def _read_env_file(path: Path, *, explicit: bool) -> dict[str, str]:
    label = "--env-file" if explicit else ".env"
    if not path.exists():
        if explicit:
            raise ConfigError(label, f"file {path} does not exist")
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            handle.read(1)
    except OSError as exc:
        raise ConfigError(label, f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(label, f"{path} is not UTF-8 text") from None
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def _read_ini(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    if path.is_file():
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError) as exc:
            raise ConfigError("config.ini", f"cannot parse {path}: {str(exc).splitlines()[0]}") from None
    return parser


def load_settings(
    *,
    env_file: Path | None = None,
    flags: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Resolve every setting. Raises ConfigError naming the variable on the first bad value."""
    cwd = (cwd or Path.cwd()).resolve()
    environ = os.environ if environ is None else environ
    flags = flags or {}
    dotenv = _read_env_file(env_file or cwd / ".env", explicit=env_file is not None)
    dotenv_source = ".env" if env_file is None else f"--env-file {env_file}"
    ini = _read_ini(cwd / "config.ini")

    values: dict[str, Setting] = {}
    for spec in SPECS:
        raw, source = None, "default"
        if spec.env in flags and flags[spec.env] is not None:
            raw, source = flags[spec.env], "flag"
        elif spec.env in environ:
            raw, source = environ[spec.env], "env"
        elif spec.env in dotenv:
            raw, source = dotenv[spec.env], dotenv_source
        elif spec.ini and ini.has_option(*spec.ini):
            raw, source = ini.get(*spec.ini), "config.ini"
        if source == "default":
            value = spec.default
        elif raw.strip() == "" and spec.default is None:
            value = None  # an empty optional setting means "unset", as in LightRAG
        else:
            try:
                value = spec.parse(raw)
            except ValueError as exc:
                raise ConfigError(spec.env, f"{exc} (from {source})") from None
        if spec.secret:
            register_secret(value)
        values[spec.env] = Setting(spec.env, value, source, spec.secret)
    settings = Settings(values, cwd)
    _cross_checks(settings)
    return settings


def _check_uri_userinfo(name: str, uri: str | None) -> None:
    """Refuse a URI whose password the drivers would misread: a raw `/`, `?` or `#` ends a URI's host
    part (they would read part of the password as a host, and print it in their errors), `[` or `]`
    makes it an invalid IPv6 host."""
    ours = uri_password(uri)
    if ours is None:
        return
    try:
        theirs = urlsplit(uri).password
    except ValueError:
        theirs = None
    if theirs != ours:
        raise ConfigError(name, "the part before the last '@' is not a valid user:password (a raw '/', '?', '#', "
                                "'[' or ']' breaks a URI's host part): percent-encode those characters of the "
                                "password (%2F, %3F, %23, %5B, %5D)")


def _cross_checks(settings: Settings) -> None:
    pg, neo4j, redis = settings.postgres, settings.neo4j, settings.redis
    for name, uri in (("NEO4J_URI", neo4j.uri), ("REDIS_URI", redis.uri)):
        register_uri_password(uri)
        _check_uri_userinfo(name, uri)
    if pg.ssl_cert and not pg.ssl_key:
        raise ConfigError("POSTGRES_SSL_KEY", "a client certificate (POSTGRES_SSL_CERT) needs its key file")
    if pg.ssl_key and not pg.ssl_cert:
        raise ConfigError("POSTGRES_SSL_CERT", "a client key (POSTGRES_SSL_KEY) needs its certificate file")
    mode = pg.ssl_mode or "prefer"
    if pg.ssl_crl and not pg.ssl_root_cert and mode in ("allow", "prefer", "require"):
        raise ConfigError("POSTGRES_SSL_CRL", f"a CRL is checked only when the server certificate is verified: set "
                                              f"POSTGRES_SSL_ROOT_CERT (sslmode {mode} then verifies against it) or "
                                              "remove the CRL (libpq would ignore it silently)")
    uri = neo4j.uri
    if uri and "://" not in uri:
        raise ConfigError("NEO4J_URI", f"expected a URI such as bolt://host:7687, got {uri!r}")
    redis_uri = redis.uri
    if redis_uri and not redis_uri.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("REDIS_URI", "expected a redis://, rediss:// or unix:// URI")
