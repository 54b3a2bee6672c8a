"""A damaged archive says what is damaged, where (member, byte offset), and what was expected there --
not "truncated" for a file that is whole (tarfile in stream mode reads a bad header as the end)."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import pytest

from ragstore_cli.archive import ArchiveReader
from ragstore_cli.errors import DataError
from tests.archive.helpers import write_sample


@pytest.fixture
def good(tmp_path: Path) -> Path:
    out = tmp_path / "good.ragstore"
    write_sample(out)
    return out


def members(path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return tar.getmembers()


def says(tmp_path: Path, raw: bytes) -> str:
    bad = tmp_path / "bad.ragstore"
    bad.write_bytes(raw)
    with pytest.raises(DataError) as refused:
        ArchiveReader(bad).verify()
    text = str(refused.value)
    assert "\n" not in text
    return text


def test_a_file_cut_inside_a_member_names_it_and_where_it_runs(good, tmp_path):
    last = members(good)[-1]
    cut = last.offset_data + last.size // 2
    assert says(tmp_path, good.read_bytes()[:cut]) == (
        f"archive is truncated: the file ends at byte {cut}, inside member {last.name!r} "
        f"(its {last.size} bytes run from byte {last.offset_data} to {last.offset_data + last.size})")


def test_a_file_cut_inside_a_header_or_between_members(good, tmp_path):
    info = members(good)[5]
    assert says(tmp_path, good.read_bytes()[:info.offset + 100]) == (
        f"archive is truncated: the file ends at byte {info.offset + 100}, inside the tar header of member "
        f"{info.name!r} (which begins at byte {info.offset})")
    assert says(tmp_path, good.read_bytes()[:info.offset]) == (
        f"archive is truncated: the file ends at byte {info.offset}, where member {info.name!r} should begin")


def test_a_bad_header_checksum_is_damage_not_truncation(good, tmp_path):
    info = members(good)[4]
    raw = bytearray(good.read_bytes())
    raw[info.offset + 124 + 5] ^= 0x01  # a digit of the size field: the whole file is still there
    text = says(tmp_path, bytes(raw))
    assert "truncated" not in text
    assert re.fullmatch(rf"archive is damaged: the tar header of member '{re.escape(info.name)}' at byte {info.offset} "
                        r"has a bad checksum \(stored \d+, computed \d+\)", text), text
    raw = bytearray(good.read_bytes())
    raw[info.offset + 3] ^= 0x01  # the name: what is there is said too
    there = bytes(raw[info.offset:info.offset + len(info.name)]).decode()
    assert f"at byte {info.offset}, named {there!r} there has a bad checksum" in says(tmp_path, bytes(raw))


def test_an_end_of_archive_marker_too_early(good, tmp_path):
    info = members(good)[6]
    raw = bytearray(good.read_bytes())
    raw[info.offset:info.offset + 512] = bytes(512)
    assert says(tmp_path, bytes(raw)) == (
        f"archive is damaged: an end-of-archive marker at byte {info.offset}, where member {info.name!r} should begin")


def test_bytes_after_the_end_are_refused(good, tmp_path):
    raw = good.read_bytes()
    text = says(tmp_path, raw + b"appended" * 10)
    assert text == (f"archive is damaged: only zero bytes (the end-of-archive marker and padding) may follow its last "
                    f"member, but byte {len(raw)} is not zero (80 bytes from there to the end of the file: data "
                    "appended, or two files joined?)")
    last = members(good)[-1]
    end = last.offset_data + -(-last.size // 512) * 512
    inside = bytearray(raw)
    inside[end + 10] = 0x58  # inside the end-of-archive marker itself
    assert f"but byte {end + 10} is not zero" in says(tmp_path, bytes(inside))


def test_a_missing_end_of_archive_marker(good, tmp_path):
    last = members(good)[-1]
    end = last.offset_data + last.size
    assert says(tmp_path, good.read_bytes()[:end]) == (
        f"archive is truncated: the file ends at byte {end}, after the last member but before the end-of-archive "
        f"marker (two zero blocks from byte {-(-end // 512) * 512})")


def test_a_changed_member_says_both_checksums(good, tmp_path):
    from tests.archive.helpers import rewrite

    def claim_another_checksum(doc: dict) -> None:
        next(m for m in doc["members"] if m["path"] == "doc_status.jsonl.zst")["sha256"] = "ab" * 32

    out = tmp_path / "changed.ragstore"
    rewrite(good, out, manifest=claim_another_checksum)
    text = says(tmp_path, out.read_bytes())
    assert re.fullmatch(r"archive member 'doc_status.jsonl.zst' is damaged: its SHA-256 is [0-9a-f]{16}…, the "
                        r"manifest says abababababababab… \(SHA-256 mismatch\)", text), text


def test_a_sound_archive_still_verifies(good):
    assert ArchiveReader(good).verify()
