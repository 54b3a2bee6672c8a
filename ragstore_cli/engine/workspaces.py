"""A workspace of a profile as the contract's Source and Target: each role's backend composed.

A profile sends each role to one backend (backends/registry.py); here the engine sees the workspace
whole. As a **Source** it reads every section from one consistent view, each backend holding still
its own way (contract.BackendSource):

- `snapshot` (PostgreSQL): every read, table discovery included, runs in one REPEATABLE READ
  transaction — the records are the database as of one moment;
- `fingerprint` (files): ragstore's workspace lock keeps other ragstore commands out; LightRAG writes
  each file by rename, so each file is read whole from one version, and every file's identity
  (inode, size, mtime) is taken before the first read and compared by `confirm()`;
- `reread` (Redis, the Bolt server): no snapshot exists. Each section's records are hashed as they
  are read, and `confirm()` reads the section again and compares.

A difference means the source changed while it was read: `confirm()` raises DataError, before the
target commits. A matching re-read means the records equal the source as that second read saw it;
a write undone between the two reads goes unnoticed.

As a **Target** it asks each backend for its part of the load (contract.BackendTarget): the ledger
comes from the backend serving the KV role, every backend adds its preflight checks, and the load
session routes each section to the session of the backend serving its role.
"""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator

from ragstore_cli.backends.contract import Check, LedgerStore, LoadPlan, NoteKeeper, Origin, Writer
from ragstore_cli.backends.registry import Profile, Stores, create_backend, describe, needs_lock, open_backends
from ragstore_cli.backends.sections import count_section, read_section
from ragstore_cli.config import Settings
from ragstore_cli.engine.embedding import dimension_warning, model_of, target_embedding
from ragstore_cli.errors import DataError, UsageError
from ragstore_cli.records import (DEFAULT_BATCH, DOC_STATUS_NAMESPACE, GRAPH_NAMESPACE, KV_NAMESPACES, ROLE_ORDER,
                                  SECTION, SECTIONS, VECTOR_NAMESPACES, Batch, Digest, Role)

_NAMESPACES = {Role.KV: list(KV_NAMESPACES), Role.VECTOR: list(VECTOR_NAMESPACES), Role.GRAPH: [GRAPH_NAMESPACE],
               Role.DOC_STATUS: [DOC_STATUS_NAMESPACE]}


@contextlib.asynccontextmanager
async def workspace_locks(settings: Settings, workspaces: list[str], command: str,
                          timeout: float | None) -> AsyncIterator[None]:
    """Hold the workspaces' locks (sorted, so two commands never wait on each other in a cycle)."""
    from ragstore_cli.coordination import workspace_lock

    async with contextlib.AsyncExitStack() as stack:
        for workspace in sorted(set(workspaces)):
            await stack.enter_async_context(workspace_lock(settings, workspace, command=command, timeout=timeout))
        yield


def shown(name: str) -> str:
    """A workspace name for people: `(default)` for ""."""
    return name if name else "(default)"


async def open_backend(settings: Settings, name: str, workspace: str) -> Any:
    backend = create_backend(name, settings, workspace)
    await backend.open()
    return backend


async def drop_each(settings: Settings, profile: Profile, workspace: str) -> dict[str, Any]:
    """Drop the workspace from every backend of the profile; what was removed, per backend."""
    removed: dict[str, Any] = {}
    for name in dict.fromkeys(profile.values()):
        backend = await open_backend(settings, name, workspace)
        try:
            removed[name] = await backend.drop_workspace()
        finally:
            await backend.close()
    return removed


def lightrag_warning(settings: Settings, profile: Profile) -> str | None:
    """A warning when a LightRAG process on this host seems to use the profile's working dir, else None.

    Only the files backend can be probed (coordination/probe.py: processes and fresh temp files); a
    LightRAG server on another host, or one using PostgreSQL, Neo4j or Redis, is invisible to ragstore,
    and saying so on every run would read as a detection. docs/locks.md says it once instead.
    """
    if "files" not in profile.values():
        return None
    try:
        from ragstore_cli.coordination import probe_lightrag

        presence = probe_lightrag(settings.working_dir)
    except Exception:  # noqa: BLE001 - a probe failure must not stop the command
        return None
    if presence.verdict == "cannot-tell":
        return None
    evidence = "; ".join(presence.evidence)[:200]
    return (f"{presence.message} ({evidence}): ragstore's locks do not cover a running LightRAG, so stop it "
            "(or make sure it is idle) for a consistent result")


class _Workspace:
    """What both sides share: the profile's backends bound to one workspace, under its lock."""

    def __init__(self, settings: Settings, profile: Profile, workspace: str, *, command: str,
                 lock: bool = True, lock_timeout: float | None = None) -> None:
        self.settings, self.profile, self.workspace = settings, profile, workspace
        self.command, self.lock, self.lock_timeout = command, lock, lock_timeout
        self.stores: Stores | None = None
        self.warnings: list[str] = []

    def keys(self) -> list[str]:
        return [s.key for s in SECTIONS if s.role in self.profile]

    def backend(self, role: Role) -> Any:
        assert self.stores is not None, "open() first"
        return self.stores.backend(role)

    async def _enter(self, stack: contextlib.AsyncExitStack, settings: Settings) -> Stores:
        """Open the backends (connecting writes nothing), say if LightRAG seems to be at work."""
        warning = lightrag_warning(settings, self.profile)
        self.warnings += [warning] if warning else []
        stores = await open_backends(settings, self.profile, self.workspace)
        stack.push_async_callback(stores.close)
        self.stores = stores
        return stores

    async def _lock(self, stack: contextlib.AsyncExitStack, settings: Settings) -> None:
        """ragstore's workspace lock, where a backend has no transaction of its own (`lock`: the caller
        does not hold it already, and the move writes: a dry run writes nothing, not even a lock file)."""
        if self.lock and needs_lock(self.profile):
            from ragstore_cli.coordination import workspace_lock

            await stack.enter_async_context(workspace_lock(settings, self.workspace, command=self.command,
                                                           timeout=self.lock_timeout))

    def served(self, name: str) -> list[str]:
        """The namespaces backend `name` serves in this profile."""
        return [ns for role in ROLE_ORDER if self.profile.get(role) == name for ns in _NAMESPACES[role]]


class WorkspaceSource(_Workspace):
    """A workspace as a Source (see the module docstring). `verb` and `outcome` word the refusal when
    it changed while it was read ("export", "no archive was written")."""

    def __init__(self, settings: Settings, profile: Profile, workspace: str, *, verb: str = "export",
                 outcome: str = "no archive was written", **kw: Any) -> None:
        super().__init__(settings, profile, workspace, command=kw.pop("command", verb), **kw)
        self.verb, self.outcome = verb, outcome
        self.readers: dict[str, Any] = {}  # backend name → the backend as its consistent view reads it
        self.mechanisms: dict[str, str] = {}
        self.fingerprints: dict[str, Any] = {}
        self.digests: dict[str, Digest] = {}

    @property
    def consistency(self) -> dict[str, str]:
        """backend name → snapshot | fingerprint | reread (what docs/transfer.md describes)."""
        return dict(self.mechanisms)

    @contextlib.asynccontextmanager
    async def open(self, observer: Any = None) -> AsyncIterator["WorkspaceSource"]:
        async with contextlib.AsyncExitStack() as stack:
            await self._lock(stack, self.settings)
            stores = await self._enter(stack, self.settings)
            for name, backend in stores.backends.items():
                if callable(getattr(backend, "snapshot", None)):
                    self.mechanisms[name] = "snapshot"
                    self.readers[name] = await stack.enter_async_context(backend.snapshot())
                    continue
                self.readers[name] = backend
                if callable(getattr(backend, "fingerprint", None)):
                    self.mechanisms[name] = "fingerprint"
                    self.fingerprints[name] = await backend.fingerprint(self.served(name))
                else:
                    self.mechanisms[name] = "reread"
            check = getattr(self._reader(Role.VECTOR), "check_export", None) if Role.VECTOR in self.profile else None
            if callable(check):
                await check()
            yield self

    def _reader(self, role: Role) -> Any:
        return self.readers[self.profile[role]]

    async def origin(self) -> Origin:
        counts = {key: await self.count(key) for key in self.keys()}
        dims: dict[str, int | None] = {}
        model, warnings = None, list(self.warnings)
        if Role.VECTOR in self.profile:
            vectors = self._reader(Role.VECTOR).vectors()
            model, noted = await model_of(vectors, self.settings)
            warnings += noted
            dims = {f"vectors/{ns}": await vectors.dimension(ns) for ns in VECTOR_NAMESPACES}
        dim = next((d for d in dims.values() if d is not None), None)
        warnings += dimension_warning(self.settings, dim)
        carried = getattr(self.backend(Role.VECTOR), "not_carried", {}) if Role.VECTOR in self.profile else {}
        return Origin(workspace=self.workspace, backends={r.value: n for r, n in self.profile.items()},
                      identity=f"{self.workspace} in {describe(self.profile)}", label=describe(self.profile),
                      model=model, dim=dim, dims=dims, counts=counts, warnings=warnings,
                      not_carried={k: sorted(v) for k, v in carried.items()})

    async def count(self, key: str) -> int:
        return await count_section(self._reader(SECTION[key].role), key)

    async def peak_bound(self, key: str) -> float | None:
        """A bound the vector backend computes without sending the vectors (PostgreSQL), else None."""
        bound = getattr(self._reader(Role.VECTOR).vectors(), "peak_bound", None) if Role.VECTOR in self.profile else None
        return await bound(SECTION[key].namespace) if callable(bound) else None

    async def read(self, key: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[Batch]:
        role = SECTION[key].role
        digest = self.digests.setdefault(key, Digest()) if self.mechanisms[self.profile[role]] == "reread" else None
        if digest is not None:
            digest.count = digest.total = 0  # the view's digest is of the latest full read
        async for batch in read_section(self._reader(role), key, batch_size):
            if digest is not None:
                digest.add(batch)
            yield batch

    def read_meta(self, key: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[Batch]:
        """A vector section's ids and metadata with no vector decoded, where the backend can (files:
        NanoVectorDB's vector strings are cut out before parsing); otherwise the records whole."""
        role = SECTION[key].role
        meta = getattr(self._reader(role).vectors(), "read_meta", None) if role is Role.VECTOR else None
        if callable(meta) and self.mechanisms[self.profile[role]] != "reread":
            return meta(SECTION[key].namespace, batch_size)
        return self.read(key, batch_size)

    async def confirm(self) -> None:
        """DataError when any backend's data changed while it was read (see the module docstring)."""
        for name, before in self.fingerprints.items():
            now = await self.readers[name].fingerprint(self.served(name))
            if now != before:
                changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
                raise self._changed(f"{name}: {', '.join(changed[:4])} changed while it was read")
        for key, first in self.digests.items():
            again = Digest()
            async for batch in read_section(self._reader(SECTION[key].role), key, DEFAULT_BATCH):
                again.add(batch)
            if not again.same(first):
                what = f"{first.count} records then, {again.count} now" if again.count != first.count else \
                    "records were rewritten"
                raise self._changed(f"{self.profile[SECTION[key].role]}: {key} was written to while it was read ({what})")

    def _changed(self, detail: str) -> DataError:
        return DataError(f"the source changed during the {self.verb} ({detail}); {self.outcome}",
                         hint=f"stop LightRAG (or wait until it is idle) and {self.verb} again")


class WorkspaceTarget(_Workspace):
    """A workspace as a Target (see the module docstring). `relabel` names the vectors' model anew
    (`--embedding-model`: never re-embeds)."""

    def __init__(self, settings: Settings, profile: Profile, workspace: str, *, relabel: str | None = None,
                 command: str = "import", keep_ledger: bool = True, **kw: Any) -> None:
        super().__init__(settings, profile, workspace, command=command, **kw)
        self.relabel, self.keep_ledger = relabel, keep_ledger
        self.origin: Origin | None = None
        self.model: str | None = None
        self.dim: int | None = None
        self.loaders: dict[str, Any] = {}
        self.plan_warnings: list[str] = []
        self.observer: Any = None

    @contextlib.asynccontextmanager
    async def open(self, origin: Origin, observer: Any = None) -> AsyncIterator["WorkspaceTarget"]:
        self.origin, self.observer = origin, observer
        self.model, self.dim = target_embedding(self.settings, origin, self.relabel)
        overrides = {k: v for k, v in (("EMBEDDING_MODEL", self.model), ("EMBEDDING_DIM", self.dim)) if v is not None}
        loading = self.settings.with_overrides(overrides)
        async with contextlib.AsyncExitStack() as stack:
            stores = await self._enter(stack, loading)
            for key, dim in origin.dims.items() if Role.VECTOR in self.profile else ():
                have = await stores.vectors.dimension(SECTION[key].namespace) if dim is not None else None
                if have is not None and have != dim:
                    raise UsageError(f"the target's {SECTION[key].namespace} vectors have dimension {have}, the "
                                     f"{origin.kind}'s {dim}; ragstore never re-embeds")
            self.prepare(replace=True, resume=False)
            for loader in self.loaders.values():
                loader.precheck()
            await self._lock(stack, loading)
            yield self

    def takes(self, key: str) -> bool:
        """Whether this target takes section `key` (a vector section with no dimension holds nothing)."""
        assert self.origin is not None
        return key in SECTION and SECTION[key].role in self.profile and \
            not (SECTION[key].role is Role.VECTOR and self._dim(key) is None and not self.origin.counts.get(key))

    def _dim(self, key: str) -> int | None:
        assert self.origin is not None
        return self.origin.dims.get(key) or self.dim

    def prepare(self, *, replace: bool, resume: bool) -> None:
        """Ask each backend for its part of this load (replace or merge; a fresh load or a resumed one)."""
        assert self.origin is not None
        origin, names = self.origin, list(dict.fromkeys(self.profile.values()))
        dims = tuple(dict.fromkeys(d for k in origin.dims if self.takes(k) and (d := self._dim(k))))
        self.plan_warnings = []
        for name in names:
            roles = frozenset(r for r in ROLE_ORDER if self.profile.get(r) == name)
            plan = LoadPlan(workspace=self.workspace, roles=roles, replace=replace, model=self.model, dim=self.dim,
                            dims=dims if Role.VECTOR in roles else (), counts=dict(origin.counts),
                            peaks=dict(origin.peaks), resume=resume, all_roles=len(names) == 1 and len(roles) == 4,
                            text_chunks_here=self.profile.get(Role.KV) == name,
                            model_from_source=not self.settings.is_set("EMBEDDING_MODEL") and not self.relabel,
                            warnings=self.plan_warnings, observer=self.observer)
            self.loaders[name] = self.stores.backends[name].loader(plan)  # type: ignore[union-attr]

    def ledger(self) -> LedgerStore | None:
        """The KV backend's ledger store (None: a move whose caller keeps its own note)."""
        if not self.keep_ledger or Role.KV not in self.profile:
            return None
        return self.loaders[self.profile[Role.KV]].ledger()

    async def existing(self) -> int:
        return sum([await count_section(self.backend(SECTION[k].role), k) for k in self.keys()])

    async def checks(self) -> list[Check]:
        found: list[Check] = []
        for loader in self.loaders.values():
            found += await loader.checks()
        return found

    async def session(self) -> "WorkspaceSession":
        sessions: dict[str, Any] = {}
        try:
            for name, loader in self.loaders.items():
                sessions[name] = await loader.session()
        except BaseException:
            for opened in sessions.values():
                await opened.close()
            raise
        return WorkspaceSession(self, sessions)


class WorkspaceSession:
    """The load sessions of a profile's backends, as one: each section goes to its role's backend."""

    def __init__(self, target: WorkspaceTarget, sessions: dict[str, Any]) -> None:
        self.target, self.sessions = target, sessions

    def _of(self, key: str) -> Any:
        return self.sessions[self.target.profile[SECTION[key].role]]

    def is_durable(self, key: str) -> bool:
        """A committed section of `key` survives a kill (PostgreSQL's wait for the unit's commit)."""
        return self._of(key).durable

    def is_visible(self, key: str) -> bool:
        """A committed section of `key` is in the workspace for good (not staged, not in an open unit)."""
        return not self._of(key).deferred

    async def writer(self, key: str, *, dim: int | None, rows: int | None) -> Writer | None:
        if not self.target.takes(key):
            return None
        return await self._of(key).writer(key, dim=dim or self.target._dim(key), rows=rows)

    def read(self, key: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[Batch]:
        return self._of(key).read(key, batch_size)

    def identities(self, key: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[str]]:
        return self._of(key).identities(key, batch_size)

    async def commit(self, note: NoteKeeper) -> Any:
        for session in self.sessions.values():
            await session.commit(note)
        return None

    async def discard(self) -> None:
        for session in self.sessions.values():
            await session.discard()

    async def close(self) -> None:
        for session in self.sessions.values():
            await session.close()
