"""The KV and doc-status roles in Redis, in LightRAG's RedisKVStorage/RedisDocStatusStorage layout."""

from __future__ import annotations

from typing import Any, AsyncIterator

from redis.exceptions import RedisError

from ragstore_cli.records import DEFAULT_BATCH, DOC_STATUS_NAMESPACE, KV_NAMESPACES, KVRecord, Role
from ragstore_cli.backends.contract import LoadPlan, NamespaceStats
from ragstore_cli.backends.redis import keys as K
from ragstore_cli.backends.redis.store import Namespace, RedisWriter, check_kv_namespace
from ragstore_cli.config import Settings
from ragstore_cli.connect.redis import create_client, explain
from ragstore_cli.errors import OperationFailed, UsageError
from ragstore_cli.redact import mask_uri
from ragstore_cli.workspace import validate_workspace

ROLES = frozenset({Role.KV, Role.DOC_STATUS})


def effective_workspace(settings: Settings, workspace: str) -> str:
    """REDIS_WORKSPACE overrides the workspace for every Redis storage, as in LightRAG."""
    return settings.redis.workspace or workspace  # validated where it was read (config.py)


class RedisKV:
    def __init__(self, backend: "RedisBackend") -> None:
        self.backend = backend

    def _ns(self, namespace: str) -> Namespace:
        check_kv_namespace(namespace)
        return Namespace(self.backend.client, K.prefix(self.backend.workspace, namespace), namespace,
                         self.backend.target)

    async def count(self, namespace: str) -> int:
        return await self._ns(namespace).count()

    def read(self, namespace: str, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[KVRecord]]:
        return self._ns(namespace).read(batch_size)

    async def writer(self, namespace: str, *, replace: bool = True) -> RedisWriter:
        return await self._ns(namespace).writer(replace=replace)


class RedisDocStatus:
    def __init__(self, backend: "RedisBackend") -> None:
        self.ns = Namespace(backend.client, K.prefix(backend.workspace, DOC_STATUS_NAMESPACE), DOC_STATUS_NAMESPACE,
                            backend.target)

    async def count(self) -> int:
        return await self.ns.count()

    def read(self, batch_size: int = DEFAULT_BATCH) -> AsyncIterator[list[KVRecord]]:
        return self.ns.read(batch_size)

    async def writer(self, *, replace: bool = True) -> RedisWriter:
        return await self.ns.writer(replace=replace)


class RedisBackend:
    """Backend serving the KV and doc-status roles of one workspace: a BackendSource (by re-reading)
    and a BackendTarget (load.py)."""

    name = "redis"
    roles = ROLES

    def __init__(self, settings: Settings, workspace: str) -> None:
        self.settings = settings
        self.workspace = effective_workspace(settings, workspace)
        self.target = mask_uri(settings.redis.uri) or "redis"
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise OperationFailed("redis: backend used before open()")
        return self._client

    async def open(self) -> None:
        if self._client is not None:
            return
        client = create_client(self.settings)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise explain(exc, self.settings, connecting=True) from None
        self._client = client

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def kv(self) -> RedisKV:
        return RedisKV(self)

    def doc_status(self) -> RedisDocStatus:
        return RedisDocStatus(self)

    def vectors(self) -> Any:
        raise UsageError("the redis backend serves only the kv and doc_status roles")

    graph = vectors

    def loader(self, plan: LoadPlan) -> Any:
        """Redis as a load's target (load.py)."""
        from ragstore_cli.backends.redis.load import RedisLoader

        return RedisLoader(self, plan)

    async def traces(self, workspace: str, *, remove: bool) -> list[str]:
        from ragstore_cli.backends.redis.load import traces

        return await traces(self.settings, workspace, remove=remove)

    async def list_workspaces(self) -> list[str]:
        """Workspaces with at least one LightRAG record key ("" = the default workspace)."""
        found: set[str] = set()
        async for page in self._all_keys():
            for key in page:
                head, sep, _ = key.partition(b":")
                if not sep or head.startswith(K.STAGE.encode()):
                    continue
                try:
                    workspace = K.workspace_of(head.decode("utf-8"))
                    if workspace is not None:
                        found.add(validate_workspace(workspace))
                except (UnicodeDecodeError, UsageError):
                    continue  # not LightRAG's, or a name ragstore refuses to address
        return sorted(found)

    async def _all_keys(self) -> AsyncIterator[list[bytes]]:
        with K.translated(self.target):
            async for page in K.scan(self.client, "*"):
                yield page

    async def stats(self) -> list[NamespaceStats]:
        result = []
        for namespace in K.NAMESPACES:
            prefix = K.prefix(self.workspace, namespace)
            count = await Namespace(self.client, prefix, namespace, self.target).count()
            if count:
                role = Role.DOC_STATUS if namespace == DOC_STATUS_NAMESPACE else Role.KV
                result.append(NamespaceStats(namespace, role, count, location=f"{prefix}:*"))
        return result

    async def create_workspace(self, *, embedding_model: str | None = None,
                               embedding_dim: int | None = None) -> list[str]:
        return []  # Redis needs nothing before LightRAG's first write

    async def copy_workspace(self, target: str) -> dict[str, int]:
        """COPY every record key (and the doc-status sidecar) to the target prefix, server-side."""
        return await self._transfer(target, move=False)

    resumable_rename = True  # RENAMENX key by key is not atomic; a re-run moves the keys left behind

    async def rename_workspace(self, target: str, *, resume: bool = False) -> dict[str, int]:
        """RENAMENX every record key (and the sidecar) to the target prefix, server-side.

        `resume` (set by engine/copy.py from its ledger note) accepts a target that an interrupted
        rename of this workspace filled in part; the keys still under the source move."""
        return await self._transfer(target, move=True, resume=resume)

    async def _transfer(self, target: str, *, move: bool, resume: bool = False) -> dict[str, int]:
        target = validate_workspace(target)
        if target == self.workspace:
            raise UsageError(f"workspace {target!r} is the source workspace")
        done: dict[str, int] = {}
        with K.translated(self.target):
            for namespace in K.NAMESPACES if not resume else ():
                if await Namespace(self.client, K.prefix(target, namespace), namespace, self.target).count():
                    raise UsageError(f"workspace {target!r} already holds redis keys in {namespace}")
            for namespace in K.NAMESPACES:
                source, dest = K.prefix(self.workspace, namespace), K.prefix(target, namespace)
                patterns = [K.record_pattern(source)]
                if namespace == DOC_STATUS_NAMESPACE:
                    patterns += K.sidecar_patterns(source)
                for pattern in patterns:
                    moved = await self._move_keys(pattern, source, dest, move=move)
                    if pattern == patterns[0] and moved:
                        done[namespace] = moved
        return done

    async def _move_keys(self, pattern: str, source: str, dest: str, *, move: bool) -> int:
        total = 0
        async for page in K.scan(self.client, pattern):
            async with self.client.pipeline(transaction=False) as pipe:
                for key in page:
                    new = dest.encode() + key[len(source.encode()):]
                    pipe.renamenx(key, new) if move else pipe.copy(key, new)
                results = await pipe.execute()
            if not all(results):
                raise OperationFailed(f"redis: a key of the target prefix {dest!r} appeared during the copy")
            total += len(page)
        return total

    async def drop_workspace(self) -> dict[str, int]:
        """Delete every record key of the workspace (and the doc-status sidecar, and keys staged for it
        by imports that were killed); rows per namespace."""
        removed: dict[str, int] = {}
        with K.translated(self.target):
            for namespace in (*KV_NAMESPACES, DOC_STATUS_NAMESPACE):
                prefix = K.prefix(self.workspace, namespace)
                count = await K.delete_matching(self.client, K.record_pattern(prefix))
                if namespace == DOC_STATUS_NAMESPACE:
                    for pattern in K.sidecar_patterns(prefix):
                        await K.delete_matching(self.client, pattern)
                await K.delete_matching(self.client, K.staged_pattern(prefix))
                if count:
                    removed[namespace] = count
            await self._drop_stage_indexes()
        return removed

    async def _drop_stage_indexes(self) -> None:
        """The SETs listing what a killed import staged (`__ragstore_import:<id>`), for this workspace's prefixes."""
        prefixes = {K.prefix(self.workspace, ns).encode() + b":" for ns in K.NAMESPACES}
        async for page in K.scan(self.client, K.STAGE_INDEX_PATTERN):
            for index in page:
                member = await self.client.srandmember(index)
                if member is not None and any(member.startswith(p) for p in prefixes):
                    await self.client.delete(index)
