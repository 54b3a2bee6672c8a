"""Settings an existing LightRAG deployment already has, resolved with their provenance.

Names are LightRAG's own (env variables and `config.ini` sections). Precedence, highest first:
command-line flag > process environment > `.env` file > `config.ini` > built-in default.
Every value is parsed and validated here, so a bad value fails once, early, naming its variable.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from dotenv import dotenv_values

from ragstore_cli.errors import ConfigError
from ragstore_cli.redact import MASK, register_secret, register_uri_password, uri_password

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


@dataclass(frozen=True)
class Spec:
    """One setting: its LightRAG env name, config.ini location, default and parser."""

    env: str
    default: Any
    parse: Callable[[str], Any] = _text
    ini: tuple[str, str] | None = None
    secret: bool = False
    doc: str = ""


def _pg(env: str, key: str, default: Any, parse: Callable[[str], Any] = _text, **kw: Any) -> Spec:
    return Spec(env, default, parse, ("postgres", key), **kw)


def _neo(env: str, key: str, default: Any, parse: Callable[[str], Any] = _text, **kw: Any) -> Spec:
    return Spec(env, default, parse, ("neo4j", key), **kw)


SPECS: tuple[Spec, ...] = (
    # files
    Spec("WORKING_DIR", "./rag_storage", _text, doc="LightRAG working directory"),
    Spec("WORKSPACE", "", _text, doc="workspace (subfolder / PG workspace / Neo4j label)"),
    # storage classes
    Spec("LIGHTRAG_KV_STORAGE", "JsonKVStorage", _choice(KV_CLASSES)),
    Spec("LIGHTRAG_VECTOR_STORAGE", "NanoVectorDBStorage", _choice(VECTOR_CLASSES)),
    Spec("LIGHTRAG_GRAPH_STORAGE", "NetworkXStorage", _choice(GRAPH_CLASSES)),
    Spec("LIGHTRAG_DOC_STATUS_STORAGE", "JsonDocStatusStorage", _choice(DOC_STATUS_CLASSES)),
    # embedding
    Spec("EMBEDDING_MODEL", None, _text),
    Spec("EMBEDDING_DIM", None, _int(1, 65535)),
    # postgres
    _pg("POSTGRES_HOST", "host", "localhost"),
    _pg("POSTGRES_PORT", "port", 5432, _int(1, 65535)),
    _pg("POSTGRES_USER", "user", "postgres"),
    _pg("POSTGRES_PASSWORD", "password", None, secret=True),
    _pg("POSTGRES_DATABASE", "database", "postgres"),
    _pg("POSTGRES_WORKSPACE", "workspace", None),
    _pg("POSTGRES_MAX_CONNECTIONS", "max_connections", 50, _int(1, 10000)),
    _pg("POSTGRES_SSL_MODE", "ssl_mode", None, _choice(SSL_MODES, fold=str.lower)),
    _pg("POSTGRES_SSL_CERT", "ssl_cert", None, _existing_file),
    _pg("POSTGRES_SSL_KEY", "ssl_key", None, _existing_file),
    _pg("POSTGRES_SSL_ROOT_CERT", "ssl_root_cert", None, _existing_file),
    _pg("POSTGRES_SSL_CRL", "ssl_crl", None, _existing_file),
    _pg("POSTGRES_VECTOR_INDEX_TYPE", "vector_index_type", "HNSW", _choice(VECTOR_INDEX_TYPES, fold=str.upper)),
    _pg("POSTGRES_HNSW_M", "hnsw_m", 16, _int(2, 100)),
    _pg("POSTGRES_HNSW_EF", "hnsw_ef", 64, _int(4, 1000)),
    _pg("POSTGRES_IVFFLAT_LISTS", "ivfflat_lists", 100, _int(1, 32768)),
    _pg("POSTGRES_SERVER_SETTINGS", "server_options", None, _key_values),
    _pg("POSTGRES_STATEMENT_CACHE_SIZE", "statement_cache_size", None, _int(0, 100000)),
    _pg("POSTGRES_CONNECTION_RETRIES", "connection_retries", 10, _int(1, 100)),
    _pg("POSTGRES_CONNECTION_RETRY_BACKOFF", "connection_retry_backoff", 3.0, _float(0.0)),
    _pg("POSTGRES_CONNECTION_RETRY_BACKOFF_MAX", "connection_retry_backoff_max", 30.0, _float(0.0)),
    _pg("POSTGRES_POOL_CLOSE_TIMEOUT", "pool_close_timeout", 5.0, _float(0.0)),
    # neo4j
    _neo("NEO4J_URI", "uri", None),
    _neo("NEO4J_USERNAME", "username", None),
    _neo("NEO4J_PASSWORD", "password", None, secret=True),
    _neo("NEO4J_DATABASE", "database", None),
    _neo("NEO4J_WORKSPACE", "workspace", None),
    _neo("NEO4J_MAX_CONNECTION_POOL_SIZE", "max_connection_pool_size", 100, _int(1, 100000)),
    _neo("NEO4J_CONNECTION_TIMEOUT", "connection_timeout", 30.0, _float(0.0)),
    _neo("NEO4J_CONNECTION_ACQUISITION_TIMEOUT", "connection_acquisition_timeout", 30.0, _float(0.0)),
    _neo("NEO4J_MAX_TRANSACTION_RETRY_TIME", "max_transaction_retry_time", 30.0, _float(0.0)),
    _neo("NEO4J_MAX_CONNECTION_LIFETIME", "max_connection_lifetime", 300.0, _float(0.0)),
    _neo("NEO4J_LIVENESS_CHECK_TIMEOUT", "liveness_check_timeout", 30.0, _float(0.0)),
    _neo("NEO4J_KEEP_ALIVE", "keep_alive", True, _bool),
    # redis
    Spec("REDIS_URI", "redis://localhost:6379", _text, ("redis", "uri"), secret=False),
    Spec("REDIS_WORKSPACE", None, _text, ("redis", "workspace")),
    Spec("REDIS_MAX_CONNECTIONS", 200, _int(1, 100000), ("redis", "max_connections")),
    Spec("REDIS_SOCKET_TIMEOUT", 30.0, _float(0.0), ("redis", "socket_timeout")),
    Spec("REDIS_CONNECT_TIMEOUT", 10.0, _float(0.0), ("redis", "connect_timeout")),
    Spec("REDIS_RETRY_ATTEMPTS", 3, _int(0, 100), ("redis", "retry_attempts")),
    # ragstore's own
    Spec("RAGSTORE_LOCK_BACKEND", "auto", _choice(LOCK_BACKENDS, fold=str.lower), ("ragstore", "lock_backend")),
    Spec("RAGSTORE_LOCK_TIMEOUT", 30.0, _float(0.0), ("ragstore", "lock_timeout")),
    # How long a server a command uses may stay silent (no answer to the command's probe, no progress
    # on a COPY) before the command gives up with one line naming it (connect/liveness.py); also the
    # bound on connection retries and on ledger and lock statements. 0 = wait forever.
    Spec("RAGSTORE_COMMAND_TIMEOUT", 60.0, _float(0.0), ("ragstore", "command_timeout")),
)
SPEC_BY_ENV = {spec.env: spec for spec in SPECS}


@dataclass(frozen=True)
class Setting:
    """A resolved value and where it came from."""

    name: str
    value: Any
    source: str
    secret: bool = False

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
    """Every setting ragstore knows, resolved; typed views per backend live on properties."""

    values: dict[str, Setting]
    cwd: Path = field(default_factory=Path.cwd)

    def __getitem__(self, name: str) -> Any:
        return self.values[name].value

    def source(self, name: str) -> str:
        return self.values[name].source

    def is_set(self, name: str) -> bool:
        """True when the value came from anywhere but the built-in default."""
        return self.values[name].source != "default"

    def rows(self) -> list[Setting]:
        return [self.values[spec.env] for spec in SPECS]

    # typed views --------------------------------------------------------------
    @property
    def working_dir(self) -> Path:
        return (self.cwd / Path(self["WORKING_DIR"]).expanduser()).resolve()

    @property
    def storage_classes(self) -> dict[str, str]:
        return {
            "kv": self["LIGHTRAG_KV_STORAGE"],
            "vector": self["LIGHTRAG_VECTOR_STORAGE"],
            "graph": self["LIGHTRAG_GRAPH_STORAGE"],
            "doc_status": self["LIGHTRAG_DOC_STATUS_STORAGE"],
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
                where = f" (from {source})" if source != "env" else ""
                raise ConfigError(spec.env, f"{exc}{where}") from None
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
    for name in ("NEO4J_URI", "REDIS_URI"):
        register_uri_password(settings[name])
        _check_uri_userinfo(name, settings[name])
    if settings["POSTGRES_SSL_CERT"] and not settings["POSTGRES_SSL_KEY"]:
        raise ConfigError("POSTGRES_SSL_KEY", "a client certificate (POSTGRES_SSL_CERT) needs its key file")
    if settings["POSTGRES_SSL_KEY"] and not settings["POSTGRES_SSL_CERT"]:
        raise ConfigError("POSTGRES_SSL_CERT", "a client key (POSTGRES_SSL_KEY) needs its certificate file")
    mode = settings["POSTGRES_SSL_MODE"] or "prefer"
    if settings["POSTGRES_SSL_CRL"] and not settings["POSTGRES_SSL_ROOT_CERT"] and mode in ("allow", "prefer", "require"):
        raise ConfigError("POSTGRES_SSL_CRL", f"a CRL is checked only when the server certificate is verified: set "
                                              f"POSTGRES_SSL_ROOT_CERT (sslmode {mode} then verifies against it) or "
                                              "remove the CRL (libpq would ignore it silently)")
    uri = settings["NEO4J_URI"]
    if uri and "://" not in uri:
        raise ConfigError("NEO4J_URI", f"expected a URI such as bolt://host:7687, got {uri!r}")
    redis_uri = settings["REDIS_URI"]
    if redis_uri and not redis_uri.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("REDIS_URI", "expected a redis://, rediss:// or unix:// URI")
