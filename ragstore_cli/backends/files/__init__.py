"""The `files` backend: a LightRAG working directory (JSON KV, JSON doc status, NanoVectorDB, GraphML).

Workspace "" is the working-directory root; any other workspace is a direct subfolder (reference
§2.1). Reads stream; every write goes to a tmp sibling and is renamed into place on commit. A
workspace copy is staged in a hidden `.ragstore-copy-<pid>-<target>` folder and a rename is one
folder rename, so a killed copy/rename leaves the target absent or whole (docs/reliability.md).
Write only while no LightRAG process uses the folder (docs/lightrag-formats.md, "A running LightRAG").
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

from ragstore_cli.atomic import fsync_dir, fsync_file, tmp_sibling
from ragstore_cli.procs import pid_alive
from ragstore_cli.backends.contract import LoadPlan, NamespaceStats
from ragstore_cli.records import (
    DEFAULT_BATCH, DOC_STATUS_NAMESPACE, GRAPH_NAMESPACE, KV_NAMESPACES, VECTOR_NAMESPACES, GraphEdge, GraphNode, KVRecord, Role,
)
from ragstore_cli.backends.files import graphml, jsonfile
from ragstore_cli.config import Settings
from ragstore_cli.errors import DataError, OperationFailed, UsageError
from ragstore_cli.workspace import files_dir, validate_workspace

ROLES = frozenset(Role)
GRAPH_FILE = f"graph_{GRAPH_NAMESPACE}.graphml"


def kv_file(namespace: str) -> str:
    return f"kv_store_{namespace}.json"


def vdb_file(namespace: str) -> str:
    return f"vdb_{namespace}.json"


#: every file LightRAG's file storages write, namespace → file name
FILES: dict[str, str] = {
    **{ns: kv_file(ns) for ns in KV_NAMESPACES},
    DOC_STATUS_NAMESPACE: kv_file(DOC_STATUS_NAMESPACE),
    **{ns: vdb_file(ns) for ns in VECTOR_NAMESPACES},
    GRAPH_NAMESPACE: GRAPH_FILE,
}
_ROLE_OF = {**{ns: Role.KV for ns in KV_NAMESPACES}, DOC_STATUS_NAMESPACE: Role.DOC_STATUS,
            **{ns: Role.VECTOR for ns in VECTOR_NAMESPACES}, GRAPH_NAMESPACE: Role.GRAPH}


def is_lightrag_folder(folder: Path) -> bool:
    """True when the folder holds at least one LightRAG storage file."""
    return any((folder / name).is_file() for name in FILES.values())


def _check_ns(namespace: str, allowed: tuple[str, ...]) -> str:
    if namespace not in allowed:
        raise UsageError(f"unknown namespace {namespace!r}; expected one of: {', '.join(allowed)}")
    return namespace


async def _batches(items: Iterator[Any], batch_size: int) -> AsyncIterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


class JsonWriter:
    """Writer for one JSON KV / doc-status file; `replace=False` keeps old records not rewritten."""

    def __init__(self, path: Path, replace: bool) -> None:
        self.path = path
        self.replace = replace
        self.out = jsonfile.JsonObjectWriter(path)
        self.seen: set[str] = set()

    async def write(self, batch: list[KVRecord]) -> None:
        try:
            for key, value in batch:
                if key in self.seen:
                    raise DataError(f"{self.path.name}: record id {key[:80]!r} written twice")
                self.seen.add(key)
                self.out.add(key, value)
        except BaseException:
            self.out.abort()
            raise

    async def commit(self) -> None:
        try:
            if not self.replace and self.path.exists():
                for key, value in jsonfile.iter_members(self.path):
                    if key not in self.seen:
                        self.out.add(key, value)
            self.out.commit()
        except BaseException:
            self.out.abort()
            raise

    async def abort(self) -> None:
        self.out.abort()


class FilesKV:
    def __init__(self, folder: Path, namespaces: tuple[str, ...]) -> None:
        self.folder = folder
        self.namespaces = namespaces

    def path(self, namespace: str) -> Path:
        return self.folder / kv_file(_check_ns(namespace, self.namespaces))

    async def count(self, namespace: str = DOC_STATUS_NAMESPACE) -> int:
        return jsonfile.count_members(self.path(namespace))

    async def read(self, namespace: str = DOC_STATUS_NAMESPACE, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[KVRecord]]:
        path = self.path(namespace)
        if not path.exists():
            return
        async for batch in _batches(jsonfile.iter_members(path), batch_size):
            yield batch

    async def writer(self, namespace: str = DOC_STATUS_NAMESPACE, *, replace: bool = True) -> JsonWriter:
        self.folder.mkdir(parents=True, exist_ok=True)
        return JsonWriter(self.path(namespace), replace)


class FilesDocStatus(FilesKV):
    """Doc status: the same file format as JSON KV, one namespace, the DocStatusStore signatures."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, (DOC_STATUS_NAMESPACE,))

    async def count(self) -> int:  # type: ignore[override]
        return await super().count(DOC_STATUS_NAMESPACE)

    def read(self, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[KVRecord]]:  # type: ignore[override]
        return super().read(DOC_STATUS_NAMESPACE, batch_size)

    async def writer(self, *, replace: bool = True) -> JsonWriter:  # type: ignore[override]
        return await super().writer(DOC_STATUS_NAMESPACE, replace=replace)


def _edge_key(source: str, target: str) -> tuple[str, str]:
    return (source, target) if source <= target else (target, source)


class GraphWriter:
    """Takes batches of GraphNode/GraphEdge; `replace=False` keeps old elements not rewritten."""

    def __init__(self, path: Path, replace: bool) -> None:
        self.path = path
        self.replace = replace
        self.out = graphml.GraphMLWriter(path)
        self.nodes: set[str] = set()
        self.edges: set[tuple[str, str]] = set()

    def _endpoint_nodes(self) -> None:
        """Edge endpoints without a node get `{"entity_id": id}`, as LightRAG's graph storages do."""
        missing = {end for edge in self.edges for end in edge} - self.nodes
        for ident in sorted(missing):
            self.nodes.add(ident)
            self.out.add_node(GraphNode(ident, {"entity_id": ident}))

    async def write(self, batch: list[GraphNode | GraphEdge]) -> None:
        try:
            for item in batch:
                if isinstance(item, GraphNode):
                    if item.id in self.nodes:
                        raise DataError(f"graph: node {item.id[:80]!r} written twice")
                    self.nodes.add(item.id)
                    self.out.add_node(item)
                elif isinstance(item, GraphEdge):
                    key = _edge_key(item.source, item.target)
                    if key in self.edges:
                        raise DataError(f"graph: edge {key[0][:40]!r}-{key[1][:40]!r} written twice (edges are undirected)")
                    self.edges.add(key)
                    self.out.add_edge(item)
                else:
                    raise DataError(f"graph writer got a {type(item).__name__}")
        except BaseException:
            self.out.abort()
            raise

    async def commit(self) -> None:
        try:
            if not self.replace and self.path.exists():
                for batch in graphml.iter_elements(self.path, "node", DEFAULT_BATCH):
                    for node in batch:
                        if node.id not in self.nodes:
                            self.nodes.add(node.id)
                            self.out.add_node(node)
                for batch in graphml.iter_elements(self.path, "edge", DEFAULT_BATCH):
                    for edge in batch:
                        key = _edge_key(edge.source, edge.target)
                        if key not in self.edges:
                            self.edges.add(key)
                            self.out.add_edge(edge)
            self._endpoint_nodes()
            self.out.commit()
        except BaseException:
            self.out.abort()
            raise

    async def abort(self) -> None:
        self.out.abort()


class FilesGraph:
    def __init__(self, folder: Path) -> None:
        self.path = folder / GRAPH_FILE

    async def count(self) -> tuple[int, int]:
        return graphml.count_elements(self.path) if self.path.exists() else (0, 0)

    async def read_nodes(self, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[GraphNode]]:
        if self.path.exists():
            for batch in graphml.iter_elements(self.path, "node", batch_size):
                yield batch

    async def read_edges(self, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[GraphEdge]]:
        if self.path.exists():
            for batch in graphml.iter_elements(self.path, "edge", batch_size):
                yield batch

    async def writer(self, *, replace: bool = True) -> GraphWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return GraphWriter(self.path, replace)


class FilesBackend:
    """A working-directory folder bound to one workspace: a BackendSource (by fingerprint) and a
    BackendTarget (load.py) for every role."""

    name = "files"
    roles = ROLES
    #: what LightRAG's NanoVectorDB keeps out of a vector record (only its `meta_fields` survive):
    #: sections read from here lack these fields (KV and graph still hold them)
    not_carried = {
        "vectors/entities": ["description", "entity_type"],
        "vectors/relationships": ["description", "keywords", "weight"],
        "vectors/chunks": ["chunk_order_index", "tokens"],
    }

    def __init__(self, settings: Settings, workspace: str) -> None:
        self.settings = settings
        self.workspace = workspace  # checked where it came in (registry.create_backend)
        self.root = settings.working_dir
        self.folder = files_dir(self.root, self.workspace)

    async def open(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise UsageError(f"WORKING_DIR {self.root} is not a directory")

    async def close(self) -> None:
        return None

    def kv(self) -> FilesKV:
        return FilesKV(self.folder, KV_NAMESPACES)

    def vectors(self) -> Any:
        from ragstore_cli.backends.files.nano import FilesVectors

        return FilesVectors(self.folder, self.settings)

    def graph(self) -> FilesGraph:
        return FilesGraph(self.folder)

    def doc_status(self) -> FilesDocStatus:
        return FilesDocStatus(self.folder)

    async def list_workspaces(self) -> list[str]:
        """"" for the root when it holds LightRAG files, plus every subfolder that does."""
        if not self.root.is_dir():
            return []
        found = [""] if is_lightrag_folder(self.root) else []
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            if entry.is_dir(follow_symlinks=False) and is_lightrag_folder(Path(entry.path)):
                try:
                    found.append(validate_workspace(entry.name))
                except UsageError:
                    continue  # a folder LightRAG may use but ragstore refuses to address
        return found

    async def stats(self) -> list[NamespaceStats]:
        result = []
        for namespace, name in FILES.items():
            path = self.folder / name
            if not path.is_file():
                continue
            info = path.stat()
            role = _ROLE_OF[namespace]
            dim = None
            if role is Role.VECTOR:
                store = self.vectors()
                count = await store.count(namespace)
                dim = await store.dimension(namespace)
            elif role is Role.GRAPH:
                nodes, edges = await self.graph().count()
                count = nodes + edges
            else:
                count = jsonfile.count_members(path)
            result.append(NamespaceStats(namespace, role, count, info.st_size, info.st_mtime, dim,
                                         None, str(path)))
        return result

    async def fingerprint(self, namespaces: list[str]) -> dict[str, tuple[int, int, int] | None]:
        """(inode, size, mtime ns) of each namespace's file, None when absent: LightRAG replaces a file
        by rename on every write, so any write between two fingerprints changes the one it wrote."""
        out: dict[str, tuple[int, int, int] | None] = {}
        for namespace in namespaces:
            try:
                info = (self.folder / FILES[namespace]).stat()
            except FileNotFoundError:
                out[FILES[namespace]] = None
            else:
                out[FILES[namespace]] = (info.st_ino, info.st_size, info.st_mtime_ns)
        return out

    def loader(self, plan: LoadPlan) -> Any:
        from ragstore_cli.backends.files.load import FilesLoader

        return FilesLoader(self, plan)

    async def traces(self, workspace: str, *, remove: bool) -> list[str]:
        from ragstore_cli.backends.files.load import traces

        return traces(self.settings, workspace, remove=remove)

    async def drop_workspace(self) -> dict[str, int]:
        removed = {s.namespace: s.count for s in await self.stats()}
        for name in FILES.values():
            (self.folder / name).unlink(missing_ok=True)
            for tmp in self.folder.glob(_glob_escape(name) + ".tmp.*"):
                tmp.unlink(missing_ok=True)
        if self.workspace and self.folder.is_dir() and not any(self.folder.iterdir()):
            self.folder.rmdir()
        return removed

    async def create_workspace(self, *, embedding_model: str | None = None, embedding_dim: int | None = None) -> list[str]:
        created = [] if self.folder.is_dir() else [str(self.folder)]
        self.folder.mkdir(parents=True, exist_ok=True)
        return created

    def _target(self, target: str) -> Path:
        """The target folder, refused unless absent or empty: one folder rename then publishes it whole."""
        if not target:
            raise UsageError("the files backend cannot copy or rename INTO the default workspace \"\" atomically "
                             "(it is WORKING_DIR itself, beside other workspaces); choose a named workspace")
        folder = files_dir(self.root, target)
        if any((folder / name).exists() for name in FILES.values()):
            raise UsageError(f"workspace {target!r} already holds LightRAG files in {folder}")
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise UsageError(f"{folder} already exists and is not an empty folder; move it away or choose another name")
        return folder

    async def copy_workspace(self, target: str) -> dict[str, int]:
        """Copy into a hidden staging folder, then rename it into place: a kill leaves no partial target."""
        folder = self._target(target)
        root = folder.parent  # resolved WORKING_DIR: staging on the same file system as the target
        remove_stale_staging(root, target)
        staging = root / staging_name(target, os.getpid())
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        done: dict[str, int] = {}
        try:
            for namespace, name in FILES.items():
                source = self.folder / name
                if source.is_file():
                    tmp = tmp_sibling(staging / name)
                    shutil.copy2(source, tmp)
                    fsync_file(tmp)
                    os.replace(tmp, staging / name)
                    done[namespace] = (staging / name).stat().st_size
            fsync_dir(staging)
            _publish(staging, folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        fsync_dir(root)
        return done

    async def rename_workspace(self, target: str) -> dict[str, int]:
        """One rename(2) of the workspace folder: the workspace is under the old name or the new one, never split."""
        if not self.workspace:
            raise UsageError("the files backend cannot rename the default workspace \"\" atomically (its files lie "
                             "in WORKING_DIR itself); use `workspace copy \"\" DST`, then `workspace drop \"\" --yes`")
        folder = self._target(target)
        done = {ns: (self.folder / name).stat().st_size for ns, name in FILES.items() if (self.folder / name).is_file()}
        _publish(self.folder, folder)
        fsync_dir(folder.parent)
        return done


STAGING_PREFIX = ".ragstore-copy-"  # starts with '.': never a workspace name, skipped by list_workspaces


def staging_name(target: str, pid: int) -> str:
    """The hidden folder a copy to `target` is staged in, named after the copying process."""
    return f"{STAGING_PREFIX}{pid}-{target}"


def remove_stale_staging(root: Path, target: str) -> list[str]:
    """Remove staging folders for `target` left by killed copies (their pid is dead); a live run's stay."""
    removed: list[str] = []
    if not root.is_dir():
        return removed
    for entry in os.scandir(root):
        pid, _, name = entry.name[len(STAGING_PREFIX):].partition("-")
        if not entry.name.startswith(STAGING_PREFIX) or name != target or not pid.isdigit():
            continue
        if int(pid) != os.getpid() and not pid_alive(int(pid)) and entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.name)
    return removed


def _publish(source: Path, folder: Path) -> None:
    """rename(2) `source` onto `folder` (absent or empty): atomic on one file system."""
    try:
        os.rename(source, folder)
    except OSError as exc:
        raise OperationFailed(f"cannot rename {source} to {folder}: {exc.strerror or exc}") from None


def _glob_escape(text: str) -> str:
    import glob

    return glob.escape(text)


def create(settings: Settings, workspace: str) -> FilesBackend:
    """Plug-in entry point (see backends/registry.py)."""
    return FilesBackend(settings, validate_workspace(workspace))  # the package's edge; a Workspace passes as is
