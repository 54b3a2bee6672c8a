"""Streaming GraphML for NetworkXStorage's `graph_chunk_entity_relation.graphml`.

Reading uses expat's iterparse and keys attributes on `attr.name` (key ids differ between writers),
dropping each element once used, so memory holds one batch. Writing streams nodes/edges into a body
file while collecting the attribute keys, then writes header + keys + body through
`atomic.AtomicFile` (GraphML requires the keys first). Output loads with `networkx.read_graphml`, which LightRAG uses.
Values follow LightRAG's portable rule: bool, int64, finite float, XML-safe text; anything else is
refused before the file is replaced.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Iterator

from ragstore_cli.records import GraphEdge, GraphNode
from ragstore_cli.atomic import AtomicFile, tmp_sibling
from ragstore_cli.errors import DataError

NS = "{http://graphml.graphdrawing.org/xmlns}"
_PARSE_TYPES = {"string": str, "long": int, "int": int, "integer": int, "double": float, "float": float,
                "boolean": bool}
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_INT64 = (-(1 << 63), (1 << 63) - 1)
HEADER = ("<?xml version='1.0' encoding='utf-8'?>\n"
          '<graphml xmlns="http://graphml.graphdrawing.org/xmlns" '
          'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
          'xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns '
          'http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">\n')


def _convert(text: str | None, kind: str) -> Any:
    if text is None:
        return "" if kind == "string" else None
    if kind == "boolean":
        low = text.strip().lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
        raise ValueError(f"bad boolean {text!r}")
    return _PARSE_TYPES.get(kind, str)(text)


def iter_elements(path: Path, want: str, batch_size: int) -> Iterator[list[Any]]:
    """Batches of GraphNode (`want="node"`) or GraphEdge (`want="edge"`) in file order."""
    keys: dict[str, tuple[str, str]] = {}
    batch: list[Any] = []
    parent: ET.Element | None = None
    try:
        for event, elem in ET.iterparse(str(path), events=("start", "end")):
            tag = elem.tag
            if event == "start":
                if tag == NS + "graph":
                    parent = elem
                continue
            if tag == NS + "key":
                keys[elem.get("id", "")] = (elem.get("attr.name", elem.get("id", "")), elem.get("attr.type", "string"))
            elif tag in (NS + "node", NS + "edge"):
                if tag == NS + want:
                    props: dict[str, Any] = {}
                    for data in elem.iter(NS + "data"):
                        name, kind = keys.get(data.get("key", ""), (None, "string"))
                        if name is None:
                            raise DataError(f"{path.name}: data refers to undeclared key {data.get('key')!r}")
                        value = _convert(data.text, kind)
                        if value is not None:
                            props[name] = value
                    if want == "node":
                        batch.append(GraphNode(elem.get("id", ""), props))
                    else:
                        batch.append(GraphEdge(elem.get("source", ""), elem.get("target", ""), props))
                    if len(batch) >= batch_size:
                        yield batch
                        batch = []
                if parent is not None:
                    parent.remove(elem)  # keep memory flat: the graph element never accumulates children
    except (ET.ParseError, LookupError) as exc:  # LookupError: an XML declaration naming an unknown encoding
        raise DataError(f"{path.name}: malformed GraphML ({exc})") from None
    except ValueError as exc:
        raise DataError(f"{path.name}: bad attribute value ({exc})") from None
    if batch:
        yield batch


def count_elements(path: Path) -> tuple[int, int]:
    """(nodes, edges), streaming (each element is dropped from its parent once counted)."""
    nodes = edges = 0
    parent: ET.Element | None = None
    try:
        for event, elem in ET.iterparse(str(path), events=("start", "end")):
            if event == "start":
                if elem.tag == NS + "graph":
                    parent = elem
                continue
            if elem.tag in (NS + "node", NS + "edge"):
                if elem.tag == NS + "node":
                    nodes += 1
                else:
                    edges += 1
                if parent is not None:
                    parent.remove(elem)
    except (ET.ParseError, LookupError) as exc:
        raise DataError(f"{path.name}: malformed GraphML ({exc})") from None
    return nodes, edges


def _escape(text: str, attribute: bool = False) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    if attribute:
        text = text.replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")
    return text


def _check_text(text: str, what: str) -> str:
    if not isinstance(text, str):
        raise DataError(f"{what} must be text, got {type(text).__name__}")
    if _XML_BAD.search(text):
        raise DataError(f"{what} {text[:60]!r} contains characters XML cannot encode (GraphML cannot store it)")
    return text


def _typed(value: Any, what: str) -> tuple[str, str]:
    """(attr.type, text) of a portable value; DataError for None/list/dict/NaN/out-of-range."""
    if isinstance(value, bool):
        return "boolean", "True" if value else "False"
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise DataError(f"{what}: integer {value} is outside int64")
        return "long", str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise DataError(f"{what}: {value} is not a finite number")
        return "double", repr(value)
    if isinstance(value, str):
        return "string", _check_text(value, what)
    raise DataError(f"{what}: {type(value).__name__} values cannot be stored in GraphML")


class GraphMLWriter:
    """Stream nodes and edges; `commit()` assembles and atomically replaces the GraphML file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        tmp = tmp_sibling(path)  # LightRAG's pattern: its orphan reaper also removes a killed writer's body
        self.body_path = tmp.with_name(tmp.name + ".body")
        self.body = open(self.body_path, "w", encoding="utf-8", newline="")
        self.keys: dict[tuple[str, str, str], str] = {}  # (for, name, type) → id

    def _key(self, scope: str, name: str, kind: str) -> str:
        found = self.keys.get((scope, name, kind))
        if found is None:
            found = self.keys[(scope, name, kind)] = f"d{len(self.keys)}"
        return found

    def _data(self, scope: str, props: dict[str, Any], who: str) -> list[str]:
        lines = []
        for name, value in props.items():
            _check_text(name, f"{who}: attribute name")
            kind, text = _typed(value, f"{who}: attribute {name!r}")
            key = self._key(scope, name, kind)
            lines.append(f'      <data key="{key}" />' if text == "" else
                         f'      <data key="{key}">{_escape(text)}</data>')
        return lines

    def add_node(self, node: GraphNode) -> None:
        ident = _check_text(node.id, "node id")
        lines = self._data("node", node.properties, f"node {ident[:60]!r}")
        head = f'    <node id="{_escape(ident, True)}"'
        self.body.write(head + (" />\n" if not lines else ">\n" + "\n".join(lines) + "\n    </node>\n"))

    def add_edge(self, edge: GraphEdge) -> None:
        src = _check_text(edge.source, "edge source")
        tgt = _check_text(edge.target, "edge target")
        lines = self._data("edge", edge.properties, f"edge {src[:30]!r}-{tgt[:30]!r}")
        head = f'    <edge source="{_escape(src, True)}" target="{_escape(tgt, True)}"'
        self.body.write(head + (" />\n" if not lines else ">\n" + "\n".join(lines) + "\n    </edge>\n"))

    def commit(self) -> None:
        self.body.close()
        with AtomicFile(self.path, text=True) as out:
            out.write(HEADER)
            for (scope, name, kind), key in self.keys.items():
                out.write(f'  <key id="{key}" for="{scope}" attr.name="{_escape(name, True)}" attr.type="{kind}" />\n')
            out.write('  <graph edgedefault="undirected">\n')
            with open(self.body_path, "r", encoding="utf-8", newline="") as body:
                while chunk := body.read(1 << 20):
                    out.write(chunk)
            out.write("  </graph>\n</graphml>\n")
        self.body_path.unlink(missing_ok=True)

    def abort(self) -> None:
        if not self.body.closed:
            self.body.close()
        self.body_path.unlink(missing_ok=True)
