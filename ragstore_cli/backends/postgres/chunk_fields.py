"""Chunk vectors need `tokens` and `chunk_order_index`: taken from text_chunks, never invented.

LightRAG's chunk vector rows carry both fields; NanoVectorDB's chunk records (and so archives made
from files) do not. They are filled from `lightrag_doc_chunks`, which an import or copy writes first,
in the same transaction. An UPDATE after the load would leave a second version of every row, and an
index built later in that transaction indexes both (PostgreSQL indexes the rows its own transaction
deleted): the HNSW rebuild did twice the work. So a trigger, created inside the transaction and
dropped before its commit (never seen by anyone else), fills each row as it is inserted.
"""

from __future__ import annotations

import asyncpg

from ragstore_cli.errors import DataError

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
