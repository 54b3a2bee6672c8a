"""Chunk vectors need `tokens` and `chunk_order_index`: taken from text_chunks, never invented.

LightRAG's chunk vector rows carry both fields; NanoVectorDB's chunk records (and so archives made
from files) do not. They are filled from `lightrag_doc_chunks`, which an import or copy writes first,
in the same transaction. An UPDATE after the load would leave a second version of every row, and an
index built later in that transaction indexes both (PostgreSQL indexes the rows its own transaction
deleted): the HNSW rebuild did twice the work. So a trigger, created inside the transaction and
dropped before its commit (never seen by anyone else), fills each row as it is inserted.

That costs the server ~25 µs a row in a plpgsql lookup, half again the COPY's own cost. So inside an
import unit the text_chunks writer also keeps a compact map of what it wrote (16 bytes a chunk) and
the chunk-vector writer fills its rows from it before sending them; the trigger only sees the rows
the map cannot answer (text_chunks written earlier, by someone else, or past the map's size cap).
"""

from __future__ import annotations

from array import array
from typing import Any, Iterable

import asyncpg
import numpy as np

from ragstore_cli.errors import DataError, UsageError

_FUNCTION = "pg_temp.ragstore_fill_chunk_fields"
_TRIGGER = "ragstore_fill_chunk_fields"
_BODY = """
DECLARE t integer; o integer;
BEGIN
    SELECT c.tokens, c.chunk_order_index INTO t, o FROM lightrag_doc_chunks AS c
     WHERE c.workspace = NEW.workspace AND c.id = NEW.id;
    IF FOUND THEN
        NEW.tokens := COALESCE(NEW.tokens, t);
        NEW.chunk_order_index := COALESCE(NEW.chunk_order_index, o);
    END IF;
    RETURN NEW;
END
"""


class ChunkFields:
    """on_start: install the filling trigger; before_commit: remove it and refuse rows still missing a field."""

    def __init__(self, table: str, workspace: str) -> None:
        self.table, self.workspace = table, workspace
        self.trigger = False

    async def install(self, conn: asyncpg.Connection) -> None:
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_language WHERE lanname = 'plpgsql')"):
            return  # filled by an UPDATE at the end instead (slower: see the module's docstring)
        await conn.execute(f"CREATE OR REPLACE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $ragstore${_BODY}$ragstore$")
        await conn.execute(f"CREATE TRIGGER {_TRIGGER} BEFORE INSERT ON {self.table} FOR EACH ROW "
                           f"WHEN (NEW.tokens IS NULL OR NEW.chunk_order_index IS NULL) EXECUTE FUNCTION {_FUNCTION}()")
        self.trigger = True

    async def finish(self, conn: asyncpg.Connection) -> None:
        if self.trigger:
            await conn.execute(f"DROP TRIGGER {_TRIGGER} ON {self.table}")
            await conn.execute(f"DROP FUNCTION {_FUNCTION}()")
            self.trigger = False
        else:
            await conn.execute(
                f"UPDATE {self.table} AS v SET tokens = COALESCE(v.tokens, c.tokens), "
                "chunk_order_index = COALESCE(v.chunk_order_index, c.chunk_order_index) "
                "FROM lightrag_doc_chunks AS c WHERE v.workspace = $1 AND c.workspace = $1 AND c.id = v.id "
                "AND (v.tokens IS NULL OR v.chunk_order_index IS NULL)", self.workspace)
        missing = await conn.fetch(f"SELECT id FROM {self.table} WHERE workspace = $1 AND (tokens IS NULL OR "
                                   "chunk_order_index IS NULL) LIMIT 3", self.workspace)
        if missing:
            ids = ", ".join(repr(r["id"][:60]) for r in missing)
            raise DataError(f"chunk vectors {ids} have no tokens/chunk_order_index and no text_chunks record to take "
                            "them from: write text_chunks first")


class ChunkFieldMap:
    """id → (tokens, chunk_order_index) of the text_chunks one import unit wrote, by 64-bit id hash.

    Built while text_chunks streams through, read by the chunk-vector writer that follows. Hashes
    that two ids share with different fields are dropped (those rows go to the trigger); an id the
    map lacks is left alone.
    Past `limit` chunks the map gives up (memory stays bounded; the trigger does the rest)."""

    def __init__(self, limit: int = 4_000_000) -> None:
        self.limit = limit
        self._hashes, self._tokens, self._orders = array("q"), array("q"), array("q")
        self._sorted: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.full = False

    def add(self, records: Iterable[tuple[str, Any]]) -> None:
        if self.full:
            return
        hashes, tokens, orders = self._hashes, self._tokens, self._orders
        for ident, value in records:
            t, o = value.get("tokens"), value.get("chunk_order_index")
            if t.__class__ is int and o.__class__ is int and -2**62 < t < 2**62 and -2**62 < o < 2**62:
                hashes.append(hash(ident))
                tokens.append(t)
                orders.append(o)
        self._sorted = None
        if len(hashes) > self.limit:
            self.full = True
            self._hashes, self._tokens, self._orders = array("q"), array("q"), array("q")

    def _index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._sorted is None:
            h = np.frombuffer(self._hashes, dtype=np.int64)
            order = np.argsort(h, kind="stable")
            h = h[order]
            tokens = np.frombuffer(self._tokens, dtype=np.int64)[order]
            orders = np.frombuffer(self._orders, dtype=np.int64)[order]
            unique = np.ones(len(h), dtype=bool)
            if len(h) > 1:  # a hash with two different answers is dropped; the same answer twice is kept
                clash = (h[1:] == h[:-1]) & ((tokens[1:] != tokens[:-1]) | (orders[1:] != orders[:-1]))
                unique[1:] &= ~clash
                unique[:-1] &= ~clash
            self._sorted = (h[unique], tokens[unique], orders[unique])
        return self._sorted

    def fill(self, ids: list[str], metas: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The metas, with missing tokens/chunk_order_index taken from the map where it knows the id."""
        if self.full or not self._hashes:
            return metas
        want = [i for i, m in enumerate(metas) if m.get("tokens") is None or m.get("chunk_order_index") is None]
        if not want:
            return metas
        keys, tokens, orders = self._index()
        if not len(keys):
            return metas
        probe = np.fromiter((hash(ids[i]) for i in want), dtype=np.int64, count=len(want))
        at = np.minimum(np.searchsorted(keys, probe), len(keys) - 1)
        out = list(metas)
        for n in np.flatnonzero(keys[at] == probe).tolist():
            i, k = want[n], int(at[n])
            filled = dict(out[i])  # the caller's dict stays as it was
            if filled.get("tokens") is None:
                filled["tokens"] = int(tokens[k])
            if filled.get("chunk_order_index") is None:
                filled["chunk_order_index"] = int(orders[k])
            out[i] = filled
        return out


class ChunkFieldCheck:
    """A load's preflight (a contract.Check): will every chunk vector get its tokens/chunk_order_index?

    Fed the source's text_chunks, then its chunk vectors, before anything is written. A vector
    whose own metadata lacks the fields must find them in the source's text_chunks (the map this
    builds, which the load unit then uses to fill the rows) or, when the load merges into
    PostgreSQL's text_chunks, in the rows already there. Whatever the KV backend (text_chunks may go
    to Redis or files), the fields come from the source itself, so a load never fails on them
    half-way and `--resume` (which skips committed text_chunks) still has them.
    """

    keys = frozenset({"kv/text_chunks", "vectors/chunks"})
    needs_vectors = False  # ids and metadata: whether each chunk vector gets tokens/chunk_order_index

    def __init__(self, backend: Any, *, text_chunks_in_postgres: bool, existing_rows: bool,
                 limit: int = 4_000_000) -> None:
        self.backend = backend
        self.in_postgres, self.existing = text_chunks_in_postgres, existing_rows
        self.map = ChunkFieldMap(limit)
        self.missing = 0
        self.sample: list[str] = []

    async def narrow(self, source: Any) -> None:
        return None  # every record is looked at

    async def observe(self, key: str, batch: Any) -> None:
        if key == "kv/text_chunks":
            self.learn(batch)
        else:
            ids = await self.uncovered(batch.ids, batch.meta)
            self.missing += len(ids)
            self.sample += ids[:3 - len(self.sample)]

    async def finish(self) -> None:
        if self.missing:
            shown = ", ".join(repr(i[:60]) for i in self.sample)
            more = ", …" if self.missing > len(self.sample) else ""
            raise UsageError(f"{self.missing} chunk vectors ({shown}{more}) have no tokens/chunk_order_index and "
                             "the source's text_chunks do not hold them either: PostgreSQL's chunk vectors need "
                             "both; nothing was written")

    def learn(self, records: Iterable[tuple[str, Any]]) -> None:
        self.map.add(records)
        if self.map.full and not self.in_postgres:
            raise UsageError(f"the source has more than {self.map.limit:,} text chunks: too many to carry their "
                             "tokens/chunk_order_index into PostgreSQL's chunk vectors from memory while text_chunks "
                             "go to another backend", hint="import text_chunks into PostgreSQL too (kv=postgres)")

    async def uncovered(self, ids: list[str], metas: list[dict[str, Any]]) -> list[str]:
        """Ids of this batch whose rows would have no tokens/chunk_order_index."""
        if self.map.full:
            return []  # text_chunks go to PostgreSQL: the trigger fills the rows from them
        metas = self.map.fill(ids, metas or [{}] * len(ids))
        missing = [i for i, m in zip(ids, metas) if m.get("tokens") is None or m.get("chunk_order_index") is None]
        if missing and self.existing and await self.backend.table_exists("lightrag_doc_chunks"):
            rows = await self.backend.pool.fetch(
                "SELECT id FROM lightrag_doc_chunks WHERE workspace = $1 AND id = ANY($2::text[]) "
                "AND tokens IS NOT NULL AND chunk_order_index IS NOT NULL", self.backend.pg_ws, missing)
            have = {r["id"] for r in rows}
            missing = [i for i in missing if i not in have]
        return missing
