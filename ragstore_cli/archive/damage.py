"""What is wrong where an archive's tar stream stops making sense, in one line that names the member
and the byte offset: the file ends early (and inside what), a tar header with a bad checksum, an
end-of-archive marker where a member should begin, bytes after the end of the archive.

Why: Python's tarfile says "unexpected end of data" for all of it, and in stream mode treats a
damaged header as the end of the archive, which read as "truncated" for a file that is whole.
"""

from __future__ import annotations

from pathlib import Path

BLOCK = 512  # a tar header, and the unit every member's data is padded to
_SCAN = 1 << 16


def padded(size: int) -> int:
    """`size` rounded up to whole tar blocks."""
    return -(-size // BLOCK) * BLOCK


def at_header(path: Path, offset: int, expected: str, reason: str = "") -> str:
    """Why no tar header of member `expected` could be read at byte `offset` of the file (`reason`:
    what tarfile said, for a header that is sound as a block but refused)."""
    size = path.stat().st_size
    if offset >= size:
        return f"archive is truncated: the file ends at byte {size}, where member {expected!r} should begin"
    with open(path, "rb") as fh:
        fh.seek(offset)
        block = fh.read(BLOCK)
    if len(block) < BLOCK:
        return (f"archive is truncated: the file ends at byte {size}, inside the tar header of member "
                f"{expected!r} (which begins at byte {offset})")
    if block == bytes(BLOCK):
        return f"archive is damaged: an end-of-archive marker at byte {offset}, where member {expected!r} should begin"
    stored, computed = _stored_checksum(block), sum(block[:148]) + 8 * 0x20 + sum(block[156:])
    named = block[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
    there = "" if named == expected else f", named {named[:80]!r} there"
    if stored != computed:
        return (f"archive is damaged: the tar header of member {expected!r} at byte {offset}{there} has a bad "
                f"checksum (stored {stored if stored is not None else 'unreadable'}, computed {computed})")
    why = f" ({reason})" if reason else ""
    return (f"archive is damaged: the tar header at byte {offset}{there} is not valid where member {expected!r} "
            f"should begin{why}")


def inside_member(path: Path, name: str, start: int, size: int) -> str | None:
    """The line for a file that ends inside member `name` (data from byte `start`, `size` bytes), or
    None when the file does hold all of it (the damage is elsewhere)."""
    have = path.stat().st_size
    if have >= start + size:
        return None
    return (f"archive is truncated: the file ends at byte {have}, inside member {name!r} "
            f"(its {size} bytes run from byte {start} to {start + size})")


def after_end(path: Path, data_end: int) -> str | None:
    """The line for anything but the end-of-archive marker and zero padding after the last member,
    whose data (padded) ends at byte `data_end`; None for a sound end."""
    size = path.stat().st_size
    if size < data_end + 2 * BLOCK:
        return (f"archive is truncated: the file ends at byte {size}, after the last member but before the "
                f"end-of-archive marker (two zero blocks from byte {data_end})")
    with open(path, "rb") as fh:
        fh.seek(data_end)
        position = data_end
        while True:
            chunk = fh.read(_SCAN)
            if not chunk:
                return None
            stripped = chunk.lstrip(b"\0")
            if stripped:
                first = position + len(chunk) - len(stripped)
                return (f"archive is damaged: only zero bytes (the end-of-archive marker and padding) may follow its "
                        f"last member, but byte {first} is not zero ({size - first} bytes from there to the end of the "
                        "file: data appended, or two files joined?)")
            position += len(chunk)


def _stored_checksum(block: bytes) -> int | None:
    field = block[148:156].replace(b"\0", b" ").strip()
    try:
        return int(field, 8)
    except ValueError:
        return None
