"""The contract between the engine and every place records live (docs/architecture.md draws it).

Two levels, both `typing.Protocol`s:

- what `engine.move()` takes: a **Source** (one workspace's records, section by section, from one
  consistent view) and a **Target** (a place to load them into, whose load session owns its
  transaction, ledger, cleanup, merge and resume). An archive is both (archive/source.py and
  archive/target.py); a workspace in a profile is both (engine/workspaces.py, which composes the
  per-role backends);
- what each backend implements, in its own package, for the roles it serves: the per-role stores
  (readers and writers of records.py's shapes), **BackendSource** (how its reads hold still) and
  **BackendTarget** (its ledger, its preflight checks, its load session, the traces a killed load
  leaves). Native workspace copies stay optional capabilities (`WorkspaceAdmin`).

Everything streams in batches: readers are async iterators of batches, writers take batches and
make them visible on `commit()` (or, in a deferred session, when the session commits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncContextManager, AsyncIterator, Protocol, runtime_checkable

from ragstore_cli.records import DEFAULT_BATCH, Batch, GraphEdge, GraphNode, KVRecord, Role, VectorBatch


# ---------------------------------------------------------------------------------------------- stores
@runtime_checkable
class Writer(Protocol):
    """Takes batches for one section; nothing is visible to readers of the target before commit().
    `dropped` (optional): fields the target could not store."""

    async def write(self, batch: Any) -> None: ...
    async def commit(self) -> None: ...
    async def abort(self) -> None: ...


class KVStore(Protocol):
    async def count(self, namespace: str) -> int: ...
    def read(self, namespace: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[KVRecord]]: ...
    async def writer(self, namespace: str, *, replace: bool = True) -> Writer: ...


class VectorStore(Protocol):
    async def count(self, namespace: str) -> int: ...
    async def dimension(self, namespace: str) -> int | None: ...
    def read(self, namespace: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[VectorBatch]: ...
    # expected_rows: how many rows the caller will write, if known (PostgreSQL decides by it whether
    # to rebuild the table's ANN index after the load or to write into it)
    async def writer(self, namespace: str, *, dim: int, replace: bool = True,
                     expected_rows: int | None = None) -> Writer: ...


class GraphStore(Protocol):
    async def count(self) -> tuple[int, int]: ...  # (nodes, edges)
    def read_nodes(self, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[GraphNode]]: ...
    def read_edges(self, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[GraphEdge]]: ...
    async def writer(self, *, replace: bool = True) -> Writer: ...  # batches of GraphNode or GraphEdge


class DocStatusStore(Protocol):
    async def count(self) -> int: ...
    def read(self, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[KVRecord]]: ...
    async def writer(self, *, replace: bool = True) -> Writer: ...


class Backend(Protocol):
    """A backend bound to one workspace; `roles` says which of the four it serves."""

    name: str
    workspace: str
    roles: frozenset[Role]

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    def kv(self) -> KVStore: ...
    def vectors(self) -> VectorStore: ...
    def graph(self) -> GraphStore: ...
    def doc_status(self) -> DocStatusStore: ...
    async def list_workspaces(self) -> list[str]: ...
    async def drop_workspace(self) -> dict[str, int]: ...  # what was removed, per namespace


@dataclass
class NamespaceStats:
    """What `workspace show` reports for one namespace of one backend."""

    namespace: str
    role: Role
    count: int
    bytes: int | None = None  # on-disk / on-server size where the backend can tell
    last_update: float | None = None  # Unix seconds
    dimension: int | None = None  # vector namespaces
    model: str | None = None  # vector namespaces (PG table suffix)
    location: str = ""  # file or table


class WorkspaceAdmin(Protocol):
    """Optional native capabilities; the workspace commands use them where a backend has them
    (`hasattr`) and otherwise stream through the engine (copy) or say "not supported"."""

    async def stats(self) -> list[NamespaceStats]: ...
    async def create_workspace(self, *, embedding_model: str | None, embedding_dim: int | None) -> list[str]: ...
    async def copy_workspace(self, target: str) -> dict[str, int]: ...  # server-side / file copies
    async def rename_workspace(self, target: str) -> dict[str, int]: ...


# ---------------------------------------------------------------------------------------------- sources
@dataclass
class Origin:
    """What a source says about the records it streams (an archive's manifest keeps it)."""

    workspace: str
    backends: dict[str, str]  # role → backend name the records were read from
    identity: str  # names this source in a ledger: an archive's manifest SHA-256, or `<workspace> in <profile>`
    label: str  # names it for people: the archive's path, or the profile
    kind: str = "source"  # "archive" for an archive: messages say which
    model: str | None = None
    dim: int | None = None
    dims: dict[str, int | None] = field(default_factory=dict)  # vector section key → its dimension
    counts: dict[str, int] = field(default_factory=dict)  # records per section, where known before reading
    peaks: dict[str, float] = field(default_factory=dict)  # largest |value| per vector section, where known
    not_carried: dict[str, list[str]] = field(default_factory=dict)  # fields the source could not carry
    warnings: list[str] = field(default_factory=list)


class Source(Protocol):
    """One workspace's records, section by section, all from one consistent view.

    `open()` takes that view (a lock, a snapshot transaction, fingerprints; an archive is verified
    whole); `consistency` then says how it holds still (snapshot | fingerprint | reread | sealed, per
    backend); `confirm()` raises DataError when the source changed while it was read."""

    def open(self, observer: Any) -> AsyncContextManager[Any]: ...
    def keys(self) -> list[str]: ...
    async def origin(self) -> Origin: ...
    async def count(self, key: str) -> int: ...
    def read(self, key: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[Batch]: ...
    def read_meta(self, key: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[Batch]: ...  # vectors may be left out
    async def peak_bound(self, key: str) -> float | None: ...  # ≥ every |value| of a vector section; None: unknown
    async def confirm(self) -> None: ...
    @property
    def consistency(self) -> dict[str, str]: ...


class BackendSource(Protocol):
    """How one backend's reads hold still while a source reads it. A backend has one of:
    `snapshot()` — an async context manager yielding the backend as seen from one consistent
    snapshot (PostgreSQL); `fingerprint(namespaces)` — identities of what it holds, compared before
    and after (files); neither — the engine reads each section twice and compares digests (Redis,
    Bolt). `not_carried` lists, per section, fields its vector role cannot keep."""

    not_carried: dict[str, list[str]]


# ---------------------------------------------------------------------------------------------- targets
class LedgerStore(Protocol):
    """Where a note about an unfinished move into one workspace is kept (engine/ledger.py reads it)."""

    async def load(self) -> dict[str, Any] | None: ...
    async def save(self, state: dict[str, Any]) -> None: ...
    async def clear(self) -> None: ...
    async def close(self) -> None: ...


class Check(Protocol):
    """A preflight check that needs the source's records: fed the batches of `keys` before anything
    is written, it raises (UsageError, DataError) to refuse the load."""

    keys: frozenset[str]
    needs_vectors: bool  # False: a vector section's ids and metadata are enough (Source.read_meta)

    async def narrow(self, source: "Source") -> None: ...  # drops keys the source settles without reading them
    async def observe(self, key: str, batch: Batch) -> None: ...
    async def finish(self) -> None: ...


@dataclass
class LoadPlan:
    """What one load asks of one backend."""

    workspace: str
    roles: frozenset[Role]  # the roles this backend takes in this load
    replace: bool  # False: merge into what is there
    model: str | None = None
    dim: int | None = None
    dims: tuple[int, ...] = ()  # widths of the vector sections that will be written
    counts: dict[str, int] = field(default_factory=dict)  # records per section this load writes
    peaks: dict[str, float] = field(default_factory=dict)  # largest |value| per vector section, where known
    resume: bool = False  # finishing an interrupted load: what an earlier run staged stays
    all_roles: bool = False  # this backend takes every role of the load (files: stage, keep the ledger aside)
    text_chunks_here: bool = False  # kv/text_chunks go to this backend too
    model_from_source: bool = False  # the model name is the source's, not EMBEDDING_MODEL's nor a relabel
    warnings: list[str] = field(default_factory=list)  # what a backend's checks want the operator told
    observer: Any = None  # the engine's Observer, told of phases a backend runs itself (an index rebuilt); None: no one


class NoteKeeper(Protocol):
    """The ledger note of the running load, as a session sees it when it commits."""

    state: dict[str, Any]
    store: LedgerStore | None

    async def save(self) -> None: ...
    def point(self, name: str) -> None: ...


class LoadSession(Protocol):
    """One load into one backend: hands out a writer per section. A `deferred` session makes what was
    written visible only at `commit()` (PostgreSQL: one transaction; files: a staged folder swapped
    in); `durable` says whether a section whose writer committed survives a kill (a staged file does,
    a section of an open transaction does not). `close()` without `commit()` rolls back;
    `discard()` also removes what a refused load left."""

    deferred: bool
    durable: bool

    async def writer(self, key: str, *, dim: int | None, rows: int | None) -> Writer: ...
    def read(self, key: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[Batch]: ...
    def identities(self, key: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[str]]: ...  # records.identity
    async def commit(self, note: NoteKeeper) -> None: ...
    async def discard(self) -> None: ...
    async def close(self) -> None: ...


class Loader(Protocol):
    """One backend's part of one load, from preflight to commit. `precheck()` refuses what needs only
    the plan (what the source says it holds), before the workspace lock: nothing is written, not even a
    lock file; `checks()` runs under the lock and may read the target."""

    def precheck(self) -> None: ...
    def ledger(self) -> LedgerStore: ...
    async def checks(self) -> list[Check]: ...  # raises to refuse; returns the checks that need the records
    async def session(self) -> LoadSession: ...


class BackendTarget(Protocol):
    """What a backend offers as a place to load into."""

    def loader(self, plan: LoadPlan) -> Loader: ...
    async def traces(self, workspace: str, *, remove: bool) -> list[str]: ...  # what killed loads left (drop)


class TargetSession(Protocol):
    """A Target's load session: one writer per section (None: the target takes nothing of it)."""

    async def writer(self, key: str, *, dim: int | None, rows: int | None) -> Writer | None: ...
    def read(self, key: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[Batch]: ...
    def identities(self, key: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[str]]: ...  # records.identity
    def is_durable(self, key: str) -> bool: ...  # a committed section survives a kill (the ledger may say done)
    def is_visible(self, key: str) -> bool: ...  # a committed section is in place for good (kept on a refusal)
    async def commit(self, note: NoteKeeper) -> Any: ...
    async def discard(self) -> None: ...
    async def close(self) -> None: ...


class Target(Protocol):
    """A place to load one workspace's records into: a workspace of a profile, or an archive file.

    `open()` takes the locks and decides what the load will record (the embedding model: never
    re-embedding); `ledger()` is where an unfinished load is noted (None: not resumable);
    `prepare()` settles replace or merge, a fresh or a resumed load; `existing()` counts the records
    already there; `checks()` refuses what the target would refuse half-way (some checks need the
    source's records); `session()` opens the load."""

    workspace: str

    def open(self, origin: Origin, observer: Any) -> AsyncContextManager[Any]: ...
    def ledger(self) -> LedgerStore | None: ...
    def takes(self, key: str) -> bool: ...  # False: the target has nothing to write for this section
    def prepare(self, *, replace: bool, resume: bool) -> None: ...
    async def existing(self) -> int: ...
    async def checks(self) -> list[Check]: ...
    async def session(self) -> TargetSession: ...
