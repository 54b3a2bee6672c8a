"""Catalog fingerprints: what each revision's schema looks like, and which one a database matches.

`migrate adopt` compares a database that LightRAG created (any version in the chain) against the
expected fingerprint of every revision: table set, column names and type families, primary keys and
index names. Vector columns and vector tables are outside the chain and ignored here; the graph
tables (PGTableGraphStorage's, which LightRAG creates only when that storage is used) join the chain
at 0012 and are ignored when comparing with an earlier revision.
A test upgrades a fresh database one revision at a time and checks these declarations against it.
"""

from __future__ import annotations

from typing import Any

from ragstore_cli.schema import graph_tables, names

Fingerprint = dict[str, dict[str, Any]]  # table -> {"columns": {name: family}, "pk": [...], "indexes": [...]}

TYPE_FAMILY = {
    "character varying": "varchar", "text": "text", "jsonb": "jsonb", "integer": "int",
    "timestamp without time zone": "timestamp", "timestamp with time zone": "timestamptz", "ARRAY": "array",
}
TS, TZ = "timestamp", "timestamptz"


def _table(columns: dict[str, str], pk: tuple[str, ...] = ("workspace", "id")) -> dict[str, Any]:
    return {"columns": dict(columns), "pk": list(pk), "indexes": []}


def _kv_indexes(fp: Fingerprint) -> None:
    for table, spec in fp.items():
        for index in names.kv_index_names(table):
            if index not in spec["indexes"]:
                spec["indexes"].append(index)


def _expected() -> dict[str, Fingerprint]:
    """Fingerprint after each revision, built by replaying the chain's catalog effects."""
    out: dict[str, Fingerprint] = {}
    fp: Fingerprint = {
        names.DOC_FULL: _table({"id": "varchar", "workspace": "varchar", "doc_name": "varchar", "content": "text",
                                "meta": "jsonb", "create_time": TS, "update_time": TS}),
        names.DOC_CHUNKS: _table({"id": "varchar", "workspace": "varchar", "full_doc_id": "varchar",
                                  "chunk_order_index": "int", "tokens": "int", "content": "text",
                                  "file_path": "varchar", "create_time": TZ, "update_time": TZ}),
        names.LLM_CACHE: _table({"workspace": "varchar", "id": "varchar", "mode": "varchar", "original_prompt": "text",
                                 "return_value": "text", "create_time": TS, "update_time": TS},
                                pk=("workspace", "mode", "id")),
        names.DOC_STATUS: _table({"workspace": "varchar", "id": "varchar", "content_summary": "varchar",
                                  "content_length": "int", "chunks_count": "int", "status": "varchar",
                                  "file_path": "text", "created_at": TZ, "updated_at": TZ}),
    }
    _kv_indexes(fp)

    def snap(rev: str) -> None:
        out[rev] = {t: {"columns": dict(s["columns"]), "pk": list(s["pk"]), "indexes": sorted(s["indexes"])}
                    for t, s in fp.items()}

    snap("0001")
    fp[names.LLM_CACHE]["columns"]["chunk_id"] = "varchar"
    snap("0002")
    fp[names.LLM_CACHE]["columns"]["cache_type"] = "varchar"
    snap("0003")
    fp[names.LLM_CACHE]["columns"]["queryparam"] = "jsonb"
    snap("0004")
    snap("0005")  # data-only revision: same catalog as 0004
    del fp[names.LLM_CACHE]["columns"]["mode"]
    fp[names.LLM_CACHE]["pk"] = ["workspace", "id"]
    snap("0006")
    fp[names.DOC_STATUS]["columns"].update(chunks_list="jsonb", track_id="varchar", metadata="jsonb",
                                           error_msg="text", content_hash="text")
    snap("0007")
    fp[names.DOC_CHUNKS]["columns"].update(llm_cache_list="jsonb", heading="jsonb", sidecar="jsonb", file_path="text")
    fp[names.DOC_FULL]["columns"].update(sidecar_location="text", parse_format="varchar", content_hash="text",
                                         process_options="text", chunk_options="jsonb", parse_engine="text")
    snap("0008")
    for table, cols in ((names.DOC_CHUNKS, ("create_time", "update_time")), (names.DOC_STATUS, ("created_at", "updated_at"))):
        for col in cols:
            fp[table]["columns"][col] = TS
    snap("0009")
    fp[names.FULL_ENTITIES] = _table({"id": "varchar", "workspace": "varchar", "entity_names": "jsonb", "count": "int",
                                      "create_time": TS, "update_time": TS})
    fp[names.FULL_RELATIONS] = _table({"id": "varchar", "workspace": "varchar", "relation_pairs": "jsonb",
                                       "count": "int", "create_time": TS, "update_time": TS})
    for table in (names.ENTITY_CHUNKS, names.RELATION_CHUNKS):
        fp[table] = _table({"id": "varchar", "workspace": "varchar", "chunk_ids": "jsonb", "count": "int",
                            "create_time": TS, "update_time": TS})
    _kv_indexes(fp)
    snap("0010")
    p = "idx_lightrag_doc_status_"
    fp[names.DOC_STATUS]["indexes"] += [p + s for s in (
        "track_id", "workspace_content_hash", "workspace_status_updated_at", "workspace_status_created_at",
        "workspace_updated_at", "workspace_created_at", "workspace_file_path", "ws_status_created_nf_id")]
    snap("0011")
    fp[graph_tables.NODES] = _table({"workspace": "text", "namespace": "text", "id": "text", "properties": "jsonb",
                                     "updated_at": TZ}, pk=("workspace", "namespace", "id"))
    fp[graph_tables.EDGES] = _table({"workspace": "text", "namespace": "text", "src_id": "text", "tgt_id": "text",
                                     "properties": "jsonb", "updated_at": TZ},
                                    pk=("workspace", "namespace", "src_id", "tgt_id"))
    fp[graph_tables.EDGES]["indexes"] = list(graph_tables.INDEXES)
    snap("0012")
    return out


EXPECTED = _expected()
CHAIN_TABLES = (*names.KV_TABLES, graph_tables.NODES, graph_tables.EDGES)


async def fingerprint(conn) -> Fingerprint:  # noqa: ANN001 - asyncpg connection
    """The LightRAG KV and graph tables of the connection's current schema, reduced to what revisions change."""
    tables = [t.lower() for t in CHAIN_TABLES]
    fp: Fingerprint = {}
    rows = await conn.fetch(
        """SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS fmt,
                  CASE WHEN t.typcategory = 'A' THEN 'ARRAY' ELSE (SELECT data_type FROM information_schema.columns ic
                       WHERE ic.table_schema = n.nspname AND ic.table_name = c.relname AND ic.column_name = a.attname) END AS dt
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
           JOIN pg_type t ON t.oid = a.atttypid
           WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname = ANY($1::text[])
           ORDER BY c.relname, a.attnum""", tables)
    upper = {t.lower(): t for t in CHAIN_TABLES}
    for row in rows:
        spec = fp.setdefault(upper[row["relname"]], {"columns": {}, "pk": [], "indexes": []})
        if row["dt"] == "USER-DEFINED":
            continue  # e.g. content_vector in very old LIGHTRAG_DOC_CHUNKS: outside the chain
        spec["columns"][row["attname"]] = TYPE_FAMILY.get(row["dt"], row["dt"])
    for row in await conn.fetch(
            """SELECT c.relname, i.relname AS index, x.indisprimary,
                      ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(attnum, ord)
                            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.ord) AS cols
               FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = current_schema() AND c.relname = ANY($1::text[])""", tables):
        spec = fp[upper[row["relname"]]]
        if row["indisprimary"]:
            spec["pk"] = list(row["cols"])
        else:
            spec["indexes"].append(row["index"])
    for spec in fp.values():
        spec["indexes"].sort()
    return fp


def differences(actual: Fingerprint, expected: Fingerprint, *, lenient: bool = False) -> list[str]:
    """Human-readable differences, empty when `actual` matches `expected`; `lenient` ignores graph tables
    that a revision before 0012 does not declare (LightRAG makes them whenever its graph storage is PG)."""
    out: list[str] = []
    if lenient and graph_tables.NODES not in expected:
        actual = {t: spec for t, spec in actual.items() if t not in (graph_tables.NODES, graph_tables.EDGES)}
    for table in sorted(set(actual) | set(expected)):
        if table not in actual:
            out.append(f"missing table {table.lower()}")
            continue
        if table not in expected:
            out.append(f"unexpected table {table.lower()}")
            continue
        a, e = actual[table], expected[table]
        low = table.lower()
        for col in sorted(set(a["columns"]) | set(e["columns"])):
            if col not in a["columns"]:
                out.append(f"{low}: missing column {col} ({e['columns'][col]})")
            elif col not in e["columns"]:
                out.append(f"{low}: unexpected column {col} ({a['columns'][col]})")
            elif a["columns"][col] != e["columns"][col]:
                out.append(f"{low}.{col}: {a['columns'][col]}, expected {e['columns'][col]}")
        if a["pk"] != e["pk"]:
            out.append(f"{low}: primary key ({', '.join(a['pk']) or 'none'}), expected ({', '.join(e['pk'])})")
        for index in sorted(set(e["indexes"]) - set(a["indexes"])):
            out.append(f"{low}: missing index {index}")
        for index in sorted(set(a["indexes"]) - set(e["indexes"])):
            if index != "idx_lightrag_doc_status_ws_status_created_id":  # superseded name, tolerated
                out.append(f"{low}: unexpected index {index}")
    return out


def match(actual: Fingerprint) -> dict[str, Any]:
    """The earliest revision whose fingerprint equals `actual` (graph tables included; failing that, an
    earlier revision with graph tables beside it), or the closest one and its differences."""
    best: tuple[int, str, list[str]] | None = None
    for lenient in (False, True):
        for revision, expected in EXPECTED.items():
            diff = differences(actual, expected, lenient=lenient)
            if not diff:
                same = [r for r, e in EXPECTED.items() if not differences(actual, e, lenient=lenient)]
                return {"matched": True, "revision": revision, "same_catalog": same, "differences": []}
            if best is None or len(diff) <= best[0]:
                best = (len(diff), revision, diff)
    assert best is not None
    return {"matched": False, "revision": None, "closest": best[1], "differences": best[2]}
