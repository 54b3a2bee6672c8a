"""Decompression bombs in every member kind: refused at the first byte past the manifest's raw_size, or
the first line past its records, before any write; the real CLI stays under 300 MB of RSS."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ragstore_cli.archive import ArchiveReader
from ragstore_cli.archive import reader as reader_module
from ragstore_cli.archive.manifest import MAX_LINE
from ragstore_cli.errors import DataError
from tests.archive.helpers import write_sample
from tests.fuzz.bombs import plain, repeated_frames, replace_member, rle_frame

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])
JSONL = ["kv/full_docs.jsonl.zst", "doc_status.jsonl.zst", "graph/chunk_entity_relation/nodes.jsonl.zst",
         "graph/chunk_entity_relation/edges.jsonl.zst", "vectors/chunks/000000.ids.jsonl.zst"]
MATRIX = ["vectors/chunks/000000.f32.zst"]
GIB = 1 << 30


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    out = {}
    for dtype in ("float32", "float16"):
        out[dtype] = folder / f"{dtype}.ragstore"
        write_sample(out[dtype], dtype=dtype)
    return out


@pytest.fixture
def decoders(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every bounded zstd reader the archive reader makes, to check none handed out past its bound + 1."""
    made: list = []
    real = reader_module._decompressor

    def spy(*args, **kwargs):
        decoder = real(*args, **kwargs)
        made.append(decoder)
        return decoder

    monkeypatch.setattr(reader_module, "_decompressor", spy)
    return made


def payload(kind: str, original: bytes, size: int) -> bytes:
    """Stored bytes that expand to about `size` bytes (or more) of the given kind of garbage."""
    if kind == "zeros":
        return rle_frame(b"\x00", size)
    if kind == "newlines":
        return rle_frame(b"\n", size)
    if kind == "one line":
        return rle_frame(b"x", size)
    first = original.split(b"\n", 1)[0] + b"\n" if b"\n" in original else original[:64] or b"\x00"
    if kind == "repeated record":
        return repeated_frames(first, size)
    # "honest start": the member's own content, then a bomb after it
    import zstandard

    return zstandard.ZstdCompressor().compress(original) + rle_frame(b"\n", size)


def consume(path: Path, load: bool) -> None:
    reader = ArchiveReader(path)
    if not load:
        reader.verify()
        return
    for section in reader.sections():
        for _ in section.batches():
            pass


@FUZZ
@given(member=st.sampled_from(JSONL + MATRIX), dtype=st.sampled_from(["float32", "float16"]),
       kind=st.sampled_from(["zeros", "newlines", "one line", "repeated record", "honest start"]),
       size=st.sampled_from([1 << 20, 64 << 20, GIB, 4 * GIB]), load=st.booleans())
def test_bomb_in_any_member_is_refused_at_its_bound(samples, decoders, tmp_path: Path, member: str, dtype: str,
                                                    kind: str, size: int, load: bool) -> None:
    src = samples[dtype]
    if member in MATRIX and dtype == "float16":
        member = member.replace(".f32.", ".f16.")
    bomb = tmp_path / "bomb.ragstore"
    original = plain(src, member)
    replace_member(src, bomb, member, payload(kind, original, size))
    decoders.clear()
    with pytest.raises(DataError) as info:
        consume(bomb, load)
    assert "\n" not in str(info.value)
    assert all(d.total <= d.limit + 1 for d in decoders), [(d.name, d.total, d.limit) for d in decoders]


@pytest.mark.parametrize("member", JSONL)
def test_more_lines_than_declared_stop_at_the_first_extra_line(samples, decoders, tmp_path: Path,
                                                                member: str) -> None:
    """A member whose declared raw_size is large but honest in bytes: the record count stops it."""
    src = samples["float32"]
    original = plain(src, member)
    lines = original.splitlines(keepends=True)
    extra = b"".join(lines) * 3  # three times the records, declared raw_size matching the bytes
    bomb = tmp_path / "bomb.ragstore"

    def declare(doc: dict) -> None:
        for m in doc["members"]:
            if m["path"] == member:
                m["raw_size"] = len(extra)

    import zstandard

    replace_member(src, bomb, member, zstandard.ZstdCompressor().compress(extra), declare)
    with pytest.raises(DataError, match="more than the .* records the manifest declares"):
        ArchiveReader(bomb).verify()
    consumed = max(d.total for d in decoders if d.name == member)
    assert consumed <= len(original) + 2 * (1 << 20)  # stopped within a block of the first extra line


def test_window_and_tar_header_bombs(samples, tmp_path: Path) -> None:
    import zstandard

    src = samples["float32"]
    member = "kv/full_docs.jsonl.zst"
    original = plain(src, member)
    params = zstandard.ZstdCompressionParameters.from_level(19, window_log=27)
    stream = zstandard.ZstdCompressor(compression_params=params).compressobj()  # no size: the header asks 128 MiB
    huge_window = stream.compress(original) + stream.flush()
    bomb = tmp_path / "w.ragstore"
    replace_member(src, bomb, member, huge_window)
    with pytest.raises(DataError, match="damaged .*zstd"):
        ArchiveReader(bomb).verify()
    # a pax header that tarfile would read whole into memory
    import tarfile

    from tests.archive.helpers import members

    items = members(src)
    with tarfile.open(bomb, "w", format=tarfile.PAX_FORMAT) as tar:
        for i, (info, data) in enumerate(items):
            if i == 3:
                info.pax_headers = {"comment": "x" * (2 << 20)}
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(DataError, match="tar extension header of"):
        ArchiveReader(bomb).verify()


# ---------------------------------------------------------------------- the real CLI's memory
# Forks from a fresh, small interpreter: a child forked from pytest itself would report pytest's RSS as its
# peak (Linux carries the high-water mark across exec).
_LAUNCHER = """import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(f"\\nPEAK_RSS_KB {usage.ru_maxrss}\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_rss_mb(*args: str, env: dict[str, str] | None = None) -> tuple[int, float, str]:
    """Run `python -m ragstore_cli ARGS`; (exit code, peak RSS in MB of that process, its stderr)."""
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, sys.executable, "-m", "ragstore_cli", *args],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **(env or {})},
                          timeout=300)
    err, _, peak = proc.stderr.decode().rpartition("\nPEAK_RSS_KB ")
    shown = " ".join(a if "/" not in a else Path(a).name for a in args)
    print(f"peak RSS {int(peak) / 1024:6.0f} MB, exit {proc.returncode}: ragstore {shown}")  # the figures of docs/reliability.md
    return proc.returncode, int(peak) / 1024, err.lstrip("\n")


def _cases(src: Path, folder: Path, size: int = 4 * GIB) -> dict[str, Path]:
    """The bombs of issue 15 and a few worse ones, each a small file expanding to `size` bytes."""
    cases = {}
    ids = "vectors/chunks/000000.ids.jsonl.zst"
    first_id = plain(src, ids).split(b"\n", 1)[0] + b"\n"
    first_doc = plain(src, "kv/full_docs.jsonl.zst").split(b"\n")[0] + b"\n"
    cases["vector ids piling up"] = (ids, repeated_frames(first_id, size))
    cases["KV lines"] = ("kv/full_docs.jsonl.zst", repeated_frames(first_doc, size))
    cases["one endless line"] = ("graph/chunk_entity_relation/nodes.jsonl.zst", rle_frame(b"x", size))
    cases["matrix of zeros"] = ("vectors/chunks/000000.f32.zst", rle_frame(b"\x00", size))
    out = {}
    for name, (member, stored) in cases.items():
        path = folder / (name.replace(" ", "-") + ".ragstore")
        replace_member(src, path, member, stored)
        out[name] = path
    return out


def test_cli_memory_on_bombs_stays_under_300_mb(samples, tmp_path: Path) -> None:
    env = {"WORKING_DIR": str(tmp_path / "target"), "XDG_RUNTIME_DIR": str(tmp_path)}
    (tmp_path / "target").mkdir()
    for name, path in _cases(samples["float32"], tmp_path).items():
        for args in (("archive", "verify", str(path)), ("archive", "inspect", str(path)),
                     ("import", str(path), "--to", "files", "--workspace", "bombed")):
            code, rss, err = peak_rss_mb(*args, env=env)
            assert rss <= 300, f"{name}: {' '.join(args[:2])} peaked at {rss:.0f} MB"
            if args[1] != "inspect":
                assert code == 1 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, (name, err)
    assert not any((tmp_path / "target").iterdir())  # nothing written


def test_cli_memory_on_the_largest_lines_the_format_allows(tmp_path: Path) -> None:
    """Honest, maximal records: lines just under MAX_LINE, many of them; verify and import stay bounded."""
    from ragstore_cli.archive import ArchiveWriter

    path = tmp_path / "big.ragstore"
    w = ArchiveWriter(path, workspace="big")
    text = "é" * ((MAX_LINE - 200) // 2)  # two bytes each in UTF-8
    with w.kv("full_docs") as s:
        for i in range(6):
            s.write([(f"doc-{i}", {"content": text + str(i)})])
    with pytest.raises(DataError, match="lines under"):
        w.kv("text_chunks").write([("too-big", {"content": text * 2})])
    w.finish()
    env = {"WORKING_DIR": str(tmp_path / "target"), "XDG_RUNTIME_DIR": str(tmp_path)}
    for args in (("archive", "verify", str(path)), ("import", str(path), "--to", "files", "--workspace", "big")):
        code, rss, err = peak_rss_mb(*args, env=env)
        assert code == 0, err
        assert rss <= 300, f"{' '.join(args[:2])} peaked at {rss:.0f} MB"


def test_cli_memory_of_an_import_into_postgres_of_the_largest_lines(pg_database, tmp_path: Path) -> None:
    """PostgreSQL's writer copies each record on its way into COPY: lines of two-byte characters, the
    longest the format allows, are the worst case measured (~240 MB)."""
    from ragstore_cli.archive import ArchiveWriter

    path = tmp_path / "big.ragstore"
    w = ArchiveWriter(path, workspace="big")
    with w.kv("full_docs") as s:
        for i in range(4):
            s.write([(f"doc-{i}", {"content": "é" * ((MAX_LINE - 200) // 2) + str(i)})])
    w.finish()
    code, rss, err = peak_rss_mb("import", str(path), "--to", "postgres", "--workspace", "bigpg", "--if-exists",
                                 "replace", env={**pg_database, "XDG_RUNTIME_DIR": str(tmp_path)})
    assert code == 0, err
    assert rss <= 300, f"import into postgres peaked at {rss:.0f} MB"


def test_cli_memory_on_the_largest_manifest(tmp_path: Path) -> None:
    """A manifest at the size limit made of the smallest JSON objects: refused, in bounded memory."""
    from ragstore_cli.archive.manifest import MAX_MANIFEST_BYTES
    from tests.fuzz.bombs import write_archive

    path = tmp_path / "m.ragstore"
    filler = MAX_MANIFEST_BYTES // 3 - 100
    doc = {"format": "ragstore-archive", "format_version": 1, "ragstore_version": "x", "created_at": "x",
           "source": {}, "embedding": {}, "sections": [], "members": [{}] * filler}
    assert MAX_MANIFEST_BYTES - 400 < write_archive(path, doc, []) <= MAX_MANIFEST_BYTES
    for command in ("inspect", "verify"):
        code, rss, err = peak_rss_mb("archive", command, str(path))
        assert code == 1 and err.startswith("error: "), err
        assert rss <= 300, f"archive {command} peaked at {rss:.0f} MB"
