"""LightRAG's JSON record shapes ↔ its PostgreSQL columns (docs/lightrag-formats.md), one table per namespace.

`to_row` turns a JSON-shaped record into the column tuple written by binary COPY; `from_row` turns a
fetched row back into the JSON shape LightRAG's file storages hold. Renames: `return` ↔
`return_value`, `file_path` ↔ `doc_name` (full_docs), `source_id` ↔ `chunk_ids` array (vectors),
`src_id`/`tgt_id` ↔ `source_id`/`target_id` (relationships). Timestamps: epoch seconds ↔ naive UTC
TIMESTAMP; ISO-8601 (doc status) ↔ naive UTC. Keys a table has no column for are reported as dropped.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from typing import Any, Callable

from ragstore_cli.errors import DataError
from ragstore_cli.schema import names

SEP = "<SEP>"
UTC = dt.timezone.utc
ENVELOPE = {"_id", "create_time", "update_time"}


def epoch_to_ts(value: Any) -> dt.datetime:
    """Epoch seconds (LightRAG JSON) → naive UTC datetime; missing/0 → now."""
    seconds = int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value else int(time.time())
    return dt.datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


def ts_to_epoch(value: dt.datetime | None) -> int:
    if value is None:
        return 0
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def iso_to_ts(value: Any, what: str) -> dt.datetime | None:
    """ISO-8601 string (doc status) → naive UTC, as LightRAG's PG doc status stores it."""
    if value is None or value == "":
        return None
    try:
        parsed = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise DataError(f"{what}: not an ISO-8601 timestamp: {str(value)[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).replace(tzinfo=None)


def ts_to_iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _loads(value: Any, default: Any) -> Any:
    if value is None:
        return default
    return json.loads(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class Mapping:
    """One namespace's table: columns in COPY order, known JSON keys, and the two conversions."""

    namespace: str
    table: str
    columns: tuple[str, ...]  # after (workspace, id)
    keys: frozenset[str]  # JSON keys carried (besides the envelope)
    to_row: Callable[[str, dict[str, Any]], tuple]
    from_row: Callable[[Any], dict[str, Any]]
    select: str  # column expressions after id

    def dropped(self, record: dict[str, Any]) -> set[str]:
        return {k for k in record if k not in self.keys and k not in ENVELOPE}


def _envelope(rec: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    """JSON KV loses `create_time` on update (docs/lightrag-formats.md); PG needs one: use `update_time` then."""
    updated = epoch_to_ts(rec.get("update_time") or rec.get("create_time"))
    created = epoch_to_ts(rec.get("create_time") or rec.get("update_time"))
    return created, updated


def _with_envelope(ident: str, body: dict[str, Any], row: Any) -> dict[str, Any]:
    body["create_time"] = ts_to_epoch(row["create_time"])
    body["update_time"] = ts_to_epoch(row["update_time"]) or body["create_time"]
    body["_id"] = ident
    return body


def _req(rec: dict[str, Any], key: str, ident: str, ns: str) -> Any:
    if key not in rec:
        raise DataError(f"{ns}: record {ident[:80]!r} has no {key!r} (PostgreSQL requires it)")
    return rec[key]


# ------------------------------------------------------------------------------------------ KV
def _full_docs_row(i: str, r: dict[str, Any]) -> tuple:
    return (_req(r, "content", i, "full_docs"), r.get("file_path", ""), r.get("sidecar_location"),
            r.get("parse_format") or "raw", r.get("content_hash"), r.get("process_options"),
            _json(r.get("chunk_options") or {}), r.get("parse_engine"), *_envelope(r))


def _full_docs_rec(row: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"content": row["content"] or "", "file_path": row["doc_name"] or ""}
    for key in ("parse_format", "content_hash", "sidecar_location", "process_options", "parse_engine"):
        if row[key] is not None:
            body[key] = row[key]
    body["chunk_options"] = _loads(row["chunk_options"], {})
    return _with_envelope(row["id"], body, row)


def _chunks_row(i: str, r: dict[str, Any]) -> tuple:
    return (_req(r, "tokens", i, "text_chunks"), _req(r, "content", i, "text_chunks"),
            _req(r, "chunk_order_index", i, "text_chunks"), _req(r, "full_doc_id", i, "text_chunks"),
            r.get("file_path"), _json(r.get("llm_cache_list", [])), _json(r.get("heading") or {}),
            _json(r.get("sidecar") or {}), *_envelope(r))


def _chunks_rec(row: Any) -> dict[str, Any]:
    body = {"tokens": row["tokens"], "content": row["content"] or "", "chunk_order_index": row["chunk_order_index"],
            "full_doc_id": row["full_doc_id"], "file_path": row["file_path"],
            "llm_cache_list": _loads(row["llm_cache_list"], [])}
    for key in ("heading", "sidecar"):
        value = _loads(row[key], {})
        if value:
            body[key] = value
    return _with_envelope(row["id"], body, row)


def _cache_row(i: str, r: dict[str, Any]) -> tuple:
    queryparam = r.get("queryparam")
    return (_req(r, "original_prompt", i, "llm_response_cache"), _req(r, "return", i, "llm_response_cache"),
            r.get("chunk_id"), r.get("cache_type", "extract"), _json(queryparam) if queryparam else None,
            *_envelope(r))


def _cache_rec(row: Any) -> dict[str, Any]:
    body = {"return": row["return_value"] or "", "cache_type": row["cache_type"], "chunk_id": row["chunk_id"],
            "original_prompt": row["original_prompt"] or "", "queryparam": _loads(row["queryparam"], None)}
    return _with_envelope(row["id"], body, row)


def _list_mapping(namespace: str, table: str, field: str) -> Mapping:
    def to_row(i: str, r: dict[str, Any]) -> tuple:
        return (_json(_req(r, field, i, namespace)), r.get("count", len(r[field])), *_envelope(r))

    def from_row(row: Any) -> dict[str, Any]:
        return _with_envelope(row["id"], {field: _loads(row[field], []), "count": row["count"]}, row)

    return Mapping(namespace, table, (field, "count", "create_time", "update_time"),
                   frozenset({field, "count"}), to_row, from_row, f"{field}, count, create_time, update_time")


_TS = ("create_time", "update_time")
KV: dict[str, Mapping] = {
    "full_docs": Mapping(
        "full_docs", names.DOC_FULL,
        ("content", "doc_name", "sidecar_location", "parse_format", "content_hash", "process_options",
         "chunk_options", "parse_engine", *_TS),
        frozenset({"content", "file_path", "sidecar_location", "parse_format", "content_hash", "process_options",
                   "chunk_options", "parse_engine"}),
        _full_docs_row, _full_docs_rec,
        "content, doc_name, sidecar_location, parse_format, content_hash, process_options, chunk_options, "
        "parse_engine, create_time, update_time"),
    "text_chunks": Mapping(
        "text_chunks", names.DOC_CHUNKS,
        ("tokens", "content", "chunk_order_index", "full_doc_id", "file_path", "llm_cache_list", "heading",
         "sidecar", *_TS),
        frozenset({"tokens", "content", "chunk_order_index", "full_doc_id", "file_path", "llm_cache_list",
                   "heading", "sidecar"}),
        _chunks_row, _chunks_rec,
        "tokens, content, chunk_order_index, full_doc_id, file_path, llm_cache_list, heading, sidecar, "
        "create_time, update_time"),
    "llm_response_cache": Mapping(
        "llm_response_cache", names.LLM_CACHE,
        ("original_prompt", "return_value", "chunk_id", "cache_type", "queryparam", *_TS),
        frozenset({"original_prompt", "return", "chunk_id", "cache_type", "queryparam"}),
        _cache_row, _cache_rec,
        "original_prompt, return_value, chunk_id, cache_type, queryparam, create_time, update_time"),
    "full_entities": _list_mapping("full_entities", names.FULL_ENTITIES, "entity_names"),
    "full_relations": _list_mapping("full_relations", names.FULL_RELATIONS, "relation_pairs"),
    "entity_chunks": _list_mapping("entity_chunks", names.ENTITY_CHUNKS, "chunk_ids"),
    "relation_chunks": _list_mapping("relation_chunks", names.RELATION_CHUNKS, "chunk_ids"),
}


# ------------------------------------------------------------------------------------------ doc status
_DS_KEYS = ("content_summary", "content_length", "chunks_count", "status", "file_path", "chunks_list",
            "track_id", "metadata", "error_msg", "content_hash", "created_at", "updated_at")


def _ds_row(i: str, r: dict[str, Any]) -> tuple:
    what = f"doc_status {i[:80]!r}"
    return (r.get("content_summary"), r.get("content_length"), r.get("chunks_count", -1),
            _req(r, "status", i, "doc_status"), r.get("file_path"), _json(r.get("chunks_list") or []),
            r.get("track_id"), _json(r.get("metadata") or {}), r.get("error_msg"), r.get("content_hash"),
            iso_to_ts(r.get("created_at"), what), iso_to_ts(r.get("updated_at"), what))


def _ds_rec(row: Any) -> dict[str, Any]:
    body = {"status": row["status"], "content_summary": row["content_summary"],
            "content_length": row["content_length"], "created_at": ts_to_iso(row["created_at"]),
            "updated_at": ts_to_iso(row["updated_at"]), "file_path": row["file_path"],
            "track_id": row["track_id"], "content_hash": row["content_hash"],
            "chunks_count": row["chunks_count"], "chunks_list": _loads(row["chunks_list"], []),
            "metadata": _loads(row["metadata"], {})}
    if row["error_msg"] is not None:
        body["error_msg"] = row["error_msg"]
    return body


DOC_STATUS = Mapping("doc_status", names.DOC_STATUS, _DS_KEYS, frozenset(_DS_KEYS), _ds_row, _ds_rec,
                     ", ".join(_DS_KEYS))


# ------------------------------------------------------------------------------------------ vectors
def _split(source_id: Any) -> list[str] | None:
    if source_id is None:
        return None
    return str(source_id).split(SEP)


VECTOR_COLUMNS = {
    "chunks": ("full_doc_id", "chunk_order_index", "tokens", "content", "content_vector", "file_path", *_TS),
    "entities": ("entity_name", "content", "content_vector", "chunk_ids", "file_path", *_TS),
    "relationships": ("source_id", "target_id", "content", "content_vector", "chunk_ids", "file_path", *_TS),
}
VECTOR_KEYS = {
    "chunks": frozenset({"full_doc_id", "chunk_order_index", "tokens", "content", "file_path"}),
    "entities": frozenset({"entity_name", "content", "source_id", "file_path"}),
    "relationships": frozenset({"src_id", "tgt_id", "content", "source_id", "file_path"}),
}
SYSTEM_KEYS = frozenset({"__created_at__", "__write_seq__", "__id__", "vector"})


def vector_rows(ns: str, workspace: str, ids: list[str], metas: list[dict[str, Any]],
                vectors: list[Any]) -> tuple[list[tuple], set[str]]:
    """`(workspace, id, *columns of VECTOR_COLUMNS[ns])` for a whole batch, and the metadata keys no
    column carries. The bulk import's hot loop: attribute lookups hoisted, one datetime per distinct
    epoch second in the batch (rows of one ingestion share a few), no per-row set building."""
    allowed = VECTOR_KEYS[ns] | SYSTEM_KEYS
    dropped: set[str] = set()
    stamps: dict[int, dt.datetime] = {}
    rows: list[tuple] = []
    append = rows.append
    for i, ident in enumerate(ids):
        meta = metas[i] if metas else {}
        if not meta.keys() <= allowed:
            dropped.update(meta.keys() - allowed)
        get = meta.get
        value = get("__created_at__") or get("create_time")
        if value.__class__ is int:  # (a bool is not an int here; 0 is falsy: "now", never cached)
            created = stamps.get(value)
            if created is None:
                created = stamps[value] = epoch_to_ts(value)
        else:
            created = epoch_to_ts(value)
        if ns == "chunks":
            append((workspace, ident, get("full_doc_id"), get("chunk_order_index"), get("tokens"), get("content"),
                    vectors[i], get("file_path"), created, created))
        elif ns == "entities":
            append((workspace, ident, get("entity_name"), get("content"), vectors[i], _split(get("source_id")),
                    get("file_path"), created, created))
        else:
            append((workspace, ident, get("src_id"), get("tgt_id"), get("content"), vectors[i],
                    _split(get("source_id")), get("file_path"), created, created))
    return rows, dropped


def vector_meta(ns: str, row: Any) -> dict[str, Any]:
    """A fetched vector row as Nano-style metadata (meta_fields + `__created_at__`, + PG-only chunk keys)."""
    meta: dict[str, Any] = {"__created_at__": ts_to_epoch(row["create_time"])}
    if ns == "chunks":
        meta.update(full_doc_id=row["full_doc_id"], content=row["content"], file_path=row["file_path"],
                    tokens=row["tokens"], chunk_order_index=row["chunk_order_index"])
    elif ns == "entities":
        meta.update(entity_name=row["entity_name"], source_id=SEP.join(row["chunk_ids"] or []),
                    content=row["content"], file_path=row["file_path"])
    else:
        meta.update(src_id=row["source_id"], tgt_id=row["target_id"], source_id=SEP.join(row["chunk_ids"] or []),
                    content=row["content"], file_path=row["file_path"])
    return meta
