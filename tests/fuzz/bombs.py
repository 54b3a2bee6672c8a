"""Make decompression bombs: zstd frames that expand far beyond what an archive's manifest declares."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tarfile
from pathlib import Path

import zstandard

from tests.archive.helpers import members

_MAGIC = struct.pack("<I", 0xFD2FB528)
_BLOCK = 128 * 1024  # zstd's largest block


def rle_frame(byte: bytes, size: int) -> bytes:
    """A zstd frame of `size` copies of one byte, written by hand as RLE blocks: 4 bytes per 128 KiB,
    so a gigabyte costs 32 KB and no time to build. The frame has no content size and no checksum."""
    assert len(byte) == 1 and size > 0
    out = [_MAGIC, bytes([0x00, 7 << 3])]  # frame header: no size, no checksum; window 128 KiB
    while size > 0:
        n = min(size, _BLOCK)
        size -= n
        header = (n << 3) | (1 << 1) | (1 if size == 0 else 0)  # block size, type RLE, last block
        out.append(header.to_bytes(3, "little") + byte)
    return b"".join(out)


def repeated_frames(chunk: bytes, total: int) -> bytes:
    """Frames of `chunk` (compressed once) repeated until they expand to about `total` bytes."""
    frame = zstandard.ZstdCompressor(level=3).compress(chunk * max(1, (1 << 22) // max(len(chunk), 1)))
    expands = len(chunk) * max(1, (1 << 22) // max(len(chunk), 1))
    return frame * max(1, total // expands)


def replace_member(src: Path, dst: Path, path: str, stored: bytes, manifest_edit=None) -> None:
    """Copy an archive with member `path`'s stored bytes replaced; the manifest keeps its declared
    raw_size and records (what an attacker lies about) but gets the new size and sha256, so only
    the decompressed bytes give the bomb away."""
    items = members(src)
    doc = json.loads(items[0][1])
    for m in doc["members"]:
        if m["path"] == path:
            m["size"], m["sha256"] = len(stored), hashlib.sha256(stored).hexdigest()
    if manifest_edit is not None:
        manifest_edit(doc)
    write_archive(dst, doc, [(info.name, stored if info.name == path else data) for info, data in items[2:]])


def write_archive(dst: Path, doc: dict, data_members: list[tuple[str, bytes]]) -> int:
    """A tar with `doc` as its manifest (and checksum) followed by the given members; the manifest's size."""
    mbytes = json.dumps(doc, separators=(",", ":")).encode()
    sha = (hashlib.sha256(mbytes).hexdigest() + "  manifest.json\n").encode()
    with tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [("manifest.json", mbytes), ("manifest.json.sha256", sha), *data_members]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return len(mbytes)


def plain(src: Path, path: str) -> bytes:
    """The decompressed content of one member."""
    data = next(d for info, d in members(src) if info.name == path)
    return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True).read()
