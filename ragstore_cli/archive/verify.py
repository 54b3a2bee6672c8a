"""`verify`: every check the reader makes on each record, plus the ones across records that import
would otherwise hit half-way: a duplicate id in a namespace (KV, doc status, graph nodes, vectors), an
undirected edge written twice, an edge to a node the graph does not hold.

Ids are kept as 128-bit keys in bounded memory (archive/keys.py). A check that fails reads the
offending section again to name the record: the first pass keeps no text.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ragstore_cli.archive.keys import KeySet, Keys, contains, first_missing_in, pair_keys, text_keys
from ragstore_cli.archive.manifest import KIND_EDGES, KIND_NODES, MEMBER_MATRIX, Progress, Section, SectionStats
from ragstore_cli.errors import DataError

if TYPE_CHECKING:  # the reader calls verify_archive (ArchiveReader.verify): no import cycle
    from ragstore_cli.archive.reader import ArchiveReader

_NAME_BATCH = 4096


def verify_archive(reader: "ArchiveReader", progress: Progress | None = None) -> dict[str, SectionStats]:
    """Read and check the whole archive; a problem is a one-line DataError. `progress(key, 0, stored
    bytes)` is called as each member is read."""
    checks = _Checks(reader)
    collecting = gc.isenabled()
    gc.disable()  # parsed JSON holds no cycles: the collector would only rescan millions of short-lived dicts
    try:
        stats: dict[str, SectionStats] = {}
        for section in reader.sections(progress=progress):
            checks.begin(section.section)
            stats[section.key] = section.check(checks.observe)
            checks.end()
        checks.finish()
        return stats
    finally:
        if collecting:
            gc.enable()
        checks.close()


class _Checks:
    def __init__(self, reader: "ArchiveReader") -> None:
        self.reader = reader
        self.section: Section | None = None
        self.ids: KeySet | None = None        # ids of the section being read
        self.nodes: KeySet | None = None      # graph node ids, kept to the end
        self.ends: KeySet | None = None       # both ends of every edge, kept to the end
        self.edges_section: Section | None = None

    def begin(self, section: Section) -> None:
        self.section = section
        self.ids = KeySet()
        if section.kind == KIND_NODES:
            self.nodes = self.ids
        elif section.kind == KIND_EDGES:
            self.ends, self.edges_section = KeySet(unique=False), section

    def observe(self, kind: str, batch: list[Any]) -> None:
        assert self.ids is not None
        if kind == KIND_EDGES:
            assert self.ends is not None
            source, target = text_keys([e.source for e in batch]), text_keys([e.target for e in batch])
            self.ends.add(source)
            self.ends.add(target)
            self.ids.add(pair_keys(source, target))
        else:  # node ids, the (id, value) of KV and doc status, the (id, meta) of vector ids
            self.ids.add(text_keys(_ids(kind, batch)))
        if self.ids.duplicate is not None:
            self._duplicate(self.ids.duplicate)

    def end(self) -> None:
        assert self.ids is not None
        found = self.ids.first_duplicate()
        if found is not None:
            self._duplicate(found)
        if self.ids is not self.nodes:
            self.ids.close()
        self.ids = None

    def finish(self) -> None:
        if self.ends is None:
            return
        missing = first_missing_in(self.ends, self.nodes or KeySet())
        if missing is None:
            return
        assert self.edges_section is not None
        edge = self._find(self.edges_section, lambda b: list(_edge_ends(b)), missing)
        if edge is None:
            raise DataError("archive section graph/edges: an edge leads to a node graph/nodes does not hold")
        node = edge.source if contains(text_keys([edge.source]), missing).any() else edge.target
        raise DataError(f"archive section graph/edges: the edge {_show(edge.source)} - {_show(edge.target)} "
                        f"leads to node {_show(node)}, which graph/nodes does not hold (import would invent it)")

    def close(self) -> None:
        for keys in (self.ids, self.nodes, self.ends):
            if keys is not None:
                keys.close()

    def _duplicate(self, key: tuple[int, int]) -> None:
        section = self.section
        assert section is not None
        if section.kind == KIND_EDGES:
            edge = self._find(section, lambda b: [pair_keys(*_edge_ends(b))], key)
            if edge is not None:
                raise DataError(f"archive section graph/edges: the edge {_show(edge.source)} - "
                                f"{_show(edge.target)} appears twice (edges are undirected)")
        else:
            item = self._find(section, lambda b: [text_keys(_ids(section.kind, b))], key)
            if item is not None:
                raise DataError(f"archive section {section.key}: the id {_show(_ids(section.kind, [item])[0])} "
                                "appears twice")
        raise DataError(f"archive section {section.key}: two records share an id")

    def _find(self, section: Section, keys_of: Callable[[list[Any]], list[Keys]], wanted: tuple[int, int]) -> Any:
        """The first record of `section` one of whose keys is `wanted`, reading its JSON lines again (only
        to name a problem: the first pass kept no text), or None."""
        for member in self.reader.manifest.members:
            if member.section != section.key or member.kind == MEMBER_MATRIX or member.path not in self.reader.offsets:
                continue
            batch: list[Any] = []
            for item, _ in self.reader.reread(member):
                batch.append(item)
                if len(batch) >= _NAME_BATCH:
                    if (hit := _hit(batch, keys_of, wanted)) is not None:
                        return hit
                    batch = []
            if (hit := _hit(batch, keys_of, wanted)) is not None:
                return hit
        return None


def _hit(batch: list[Any], keys_of: Callable[[list[Any]], list[Keys]], wanted: tuple[int, int]) -> Any:
    if not batch:
        return None
    mask = np.zeros(len(batch), dtype=bool)
    for keys in keys_of(batch):
        mask |= contains(keys, wanted)
    return batch[int(np.argmax(mask))] if mask.any() else None


def _ids(kind: str, batch: list[Any]) -> list[str]:
    """The ids of a batch: GraphNode.id for nodes, the first of the pair for the others."""
    return [n.id for n in batch] if kind == KIND_NODES else [item[0] for item in batch]


def _edge_ends(batch: list[Any]) -> tuple[Keys, Keys]:
    return text_keys([e.source for e in batch]), text_keys([e.target for e in batch])


def _show(text: str) -> str:
    return repr(text[:80])
