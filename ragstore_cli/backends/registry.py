"""Which backend serves which role (profiles), and opening the stores of one workspace.

Profiles (`--profile`):
- one name: `files` or `postgres` (every role);
- a list: `neo4j,postgres` — each role goes to the first listed backend that serves it;
- explicit: `kv=redis,vector=postgres,graph=neo4j,doc_status=postgres`; bare names and explicit
  pairs may be mixed (explicit wins); roles left open come from the LIGHTRAG_*_STORAGE defaults;
- empty/None: from LIGHTRAG_KV/VECTOR/GRAPH/DOC_STATUS_STORAGE.

Plug-in contract (how part B's `neo4j` and `redis` backends join): a backend is a package
`ragstore_cli.backends.<name>` whose `__init__` exposes

    ROLES: frozenset[Role]                       # optional; else the static table below
    def create(settings: Settings, workspace: str) -> Backend   # no I/O; `await backend.open()` connects

The module is imported lazily, only when a profile uses it, so a missing or broken backend module
makes only that name unavailable (a UsageError naming it), never the whole CLI.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from ragstore_cli.backends.contract import Backend
from ragstore_cli.records import ROLE_ORDER, Role
from ragstore_cli.config import Settings
from ragstore_cli.errors import UsageError
from ragstore_cli.workspace import validate_workspace

_ALL = frozenset(ROLE_ORDER)

#: The roles each known backend serves (a module's own ROLES takes precedence once imported).
BACKEND_ROLES: dict[str, frozenset[Role]] = {
    "files": _ALL,
    "postgres": _ALL,
    "neo4j": frozenset({Role.GRAPH}),
    "redis": frozenset({Role.KV, Role.DOC_STATUS}),
}

#: Backends with no transaction of their own: ragstore's workspace lock keeps its commands apart there.
LOCKED_BACKENDS = frozenset({"files", "neo4j", "redis"})

#: LightRAG storage class → ragstore backend name (classes not listed are not supported).
CLASS_BACKENDS = {
    "JsonKVStorage": "files", "NanoVectorDBStorage": "files", "NetworkXStorage": "files",
    "JsonDocStatusStorage": "files",
    "PGKVStorage": "postgres", "PGVectorStorage": "postgres", "PGTableGraphStorage": "postgres",
    "PGDocStatusStorage": "postgres",
    "Neo4JStorage": "neo4j",
    "RedisKVStorage": "redis", "RedisDocStatusStorage": "redis",
}
ROLE_SETTINGS = {
    Role.KV: "LIGHTRAG_KV_STORAGE",
    Role.VECTOR: "LIGHTRAG_VECTOR_STORAGE",
    Role.GRAPH: "LIGHTRAG_GRAPH_STORAGE",
    Role.DOC_STATUS: "LIGHTRAG_DOC_STATUS_STORAGE",
}
_ROLE_ALIASES = {"kv": Role.KV, "vector": Role.VECTOR, "vectors": Role.VECTOR, "graph": Role.GRAPH,
                 "doc_status": Role.DOC_STATUS, "docstatus": Role.DOC_STATUS}

Profile = dict[Role, str]  # role → backend name

#: What a profile may look like, for error hints and --help.
PROFILE_FORMS = ("a profile is one backend (files, postgres), a list in which each role goes to the first listed "
                 "backend that serves it (neo4j,postgres), or role=backend pairs "
                 "(kv=redis,vector=postgres,graph=neo4j,doc_status=postgres); roles left out come from "
                 "LIGHTRAG_*_STORAGE")


def _check_name(name: str, profile: str | None = None) -> str:
    name = name.strip().lower()
    if name not in BACKEND_ROLES:
        where = f" in profile {profile!r}" if profile is not None else ""
        raise UsageError(f"unknown backend {name!r}{where}; expected one of: {', '.join(BACKEND_ROLES)}",
                         hint=PROFILE_FORMS if profile is not None else None)
    return name


def default_profile(settings: Settings) -> Profile:
    """The profile LightRAG itself would use, from LIGHTRAG_*_STORAGE."""
    profile: Profile = {}
    for role, variable in ROLE_SETTINGS.items():
        cls = settings.storage_classes[role.value]
        backend = CLASS_BACKENDS.get(cls)
        if backend is None:
            raise UsageError(f"{variable}={cls} is not supported by ragstore",
                             hint="choose the backends explicitly with --profile")
        profile[role] = backend
    return profile


def configured_backends(settings: Settings) -> list[str]:
    """Backends the storage classes use, plus any whose connection settings were given (what
    `check-connections` checks and `workspace grant` covers by default)."""
    classes = settings.storage_classes.values()
    chosen = []
    if any(c.startswith("PG") for c in classes) or settings.is_set("POSTGRES_HOST") or settings.is_set("POSTGRES_PASSWORD"):
        chosen.append("postgres")
    if settings.lightrag.graph_storage == "Neo4JStorage" or settings.is_set("NEO4J_URI"):
        chosen.append("neo4j")
    if any(c.startswith("Redis") for c in classes) or settings.is_set("REDIS_URI"):
        chosen.append("redis")
    if any(c in ("JsonKVStorage", "NanoVectorDBStorage", "NetworkXStorage", "JsonDocStatusStorage", "FaissVectorDBStorage")
           for c in classes) or settings.is_set("WORKING_DIR"):
        chosen.append("files")
    return chosen


def parse_profile(text: str | None, settings: Settings | None = None) -> Profile:
    """Parse a profile string into role → backend; raises UsageError on anything ambiguous."""
    if text is None or not text.strip():
        if settings is None:
            raise UsageError("no profile given and no settings to take the default from")
        return default_profile(settings)
    explicit: Profile = {}
    ordered: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise UsageError(f"profile {text!r} has an empty entry", hint=PROFILE_FORMS)
        if "=" in part:
            role_text, _, name = part.partition("=")
            role = _ROLE_ALIASES.get(role_text.strip().lower())
            if role is None:
                raise UsageError(f"unknown role {role_text.strip()!r} in profile; expected kv, vector, graph or doc_status",
                                 hint=PROFILE_FORMS)
            if role in explicit:
                raise UsageError(f"role {role.value} is given twice in profile {text!r}")
            name = _check_name(name, text)
            if role not in BACKEND_ROLES[name]:
                raise UsageError(f"backend {name} cannot serve the {role.value} role; it serves "
                                 + ", ".join(r.value for r in ROLE_ORDER if r in BACKEND_ROLES[name]))
            explicit[role] = name
        else:
            ordered.append(_check_name(part, text))
    profile: Profile = dict(explicit)
    for role in ROLE_ORDER:
        if role in profile:
            continue
        for name in ordered:
            if role in BACKEND_ROLES[name]:
                profile[role] = name
                break
    missing = [r for r in ROLE_ORDER if r not in profile]
    if missing:
        if settings is None:
            raise UsageError(f"profile {text!r} leaves roles without a backend: {', '.join(r.value for r in missing)}")
        defaults = default_profile(settings)
        for role in missing:
            profile[role] = defaults[role]
    unused = [n for n in ordered if n not in profile.values()]
    if unused:
        raise _unused_backend(text, unused[0], ordered, profile)
    return {role: profile[role] for role in ROLE_ORDER}


def _unused_backend(text: str, name: str, ordered: list[str], profile: Profile) -> UsageError:
    """A listed backend that got no role: say who took which role, and how to give it its role."""
    own = [role for role in ROLE_ORDER if role in BACKEND_ROLES[name]]
    explicit = ",".join([f"{role.value}={name}" for role in own] + [n for n in ordered if n != name])
    reordered = ",".join([name] + [n for n in ordered if n != name])
    return UsageError(f"profile {text!r} gives {name} no role (each role goes to the first listed backend that "
                      f"serves it: {describe(profile)}); name its role: {explicit}",
                      hint=f"or list {name} first: {reordered}")


def needs_lock(profile: Profile) -> bool:
    """Whether a command working on this profile's workspace takes ragstore's workspace lock."""
    return any(name in LOCKED_BACKENDS for name in profile.values())


def describe(profile: Profile) -> str:
    """`kv=files,vector=files,...` — the canonical, explicit spelling of a profile."""
    return ",".join(f"{role.value}={profile[role]}" for role in ROLE_ORDER if role in profile)


def backend_module(name: str) -> Any:
    """Import `ragstore_cli.backends.<name>` lazily; UsageError when it is not available."""
    name = _check_name(name)
    try:
        module = importlib.import_module(f"ragstore_cli.backends.{name}")
    except ImportError as exc:
        raise UsageError(f"backend {name} is not available in this installation ({exc})") from None
    if not callable(getattr(module, "create", None)):
        raise UsageError(f"backend {name} is not available in this installation (no create())")
    return module


def create_backend(name: str, settings: Settings, workspace: str) -> Backend:
    """An unopened backend bound to `workspace` (validated here, once)."""
    return backend_module(name).create(settings, validate_workspace(workspace))


@dataclass
class Stores:
    """The per-role stores of one workspace, and the backends behind them (closed together)."""

    profile: Profile
    workspace: str
    backends: dict[str, Backend] = field(default_factory=dict)

    def backend(self, role: Role) -> Backend:
        return self.backends[self.profile[role]]

    @property
    def kv(self) -> Any:
        return self.backend(Role.KV).kv()

    @property
    def vectors(self) -> Any:
        return self.backend(Role.VECTOR).vectors()

    @property
    def graph(self) -> Any:
        return self.backend(Role.GRAPH).graph()

    @property
    def doc_status(self) -> Any:
        return self.backend(Role.DOC_STATUS).doc_status()

    async def close(self) -> None:
        for backend in self.backends.values():
            await backend.close()

    async def __aenter__(self) -> "Stores":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def open_backends(settings: Settings, profile: str | Profile | None, workspace: str) -> Stores:
    """Open one backend per distinct name in the profile, bound to `workspace`; use as `async with`."""
    if not isinstance(profile, dict):
        profile = parse_profile(profile, settings)
    workspace = validate_workspace(workspace)
    stores = Stores(profile, workspace)
    try:
        for name in dict.fromkeys(profile.values()):
            backend = create_backend(name, settings, workspace)
            await backend.open()
            stores.backends[name] = backend
    except BaseException:
        await stores.close()
        raise
    return stores
