"""`ragstore archive verify|inspect` (and later export/import) through the CLI: exit codes, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.archive.helpers import rewrite, write_sample


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    out = tmp_path / "ws.ragstore"
    write_sample(out)
    return out


def test_verify_ok(cli, archive: Path) -> None:
    result = cli("archive", "verify", str(archive))
    assert result.exit_code == 0, result.output
    assert "ok" in result.stdout and "129 records in 6 sections" in result.stdout
    doc = cli("--json", "archive", "verify", str(archive)).json()
    assert doc["ok"] is True
    assert {s["section"]: s["verified_records"] for s in doc["sections"]} == {
        "kv/full_docs": 30, "doc_status": 30, "graph/nodes": 10, "graph/edges": 9,
        "vectors/chunks": 50, "vectors/entities": 0}


def test_inspect_json_and_table(cli, archive: Path) -> None:
    doc = cli("archive", "inspect", "--json", str(archive)).json()
    assert doc["format_version"] == 1
    assert doc["embedding"] == {"model": "fake-embed", "dim": 16}
    assert doc["source"]["workspace"] == "ws1"
    assert doc["counts"]["vectors/chunks"] == 50
    row = next(s for s in doc["sections"] if s["section"] == "vectors/chunks")
    assert row["dim"] == 16 and row["dtype"] == "float32" and row["stored_bytes"] > 0
    text = cli("archive", "inspect", str(archive))
    assert text.exit_code == 0
    assert "kv/full_docs" in text.stdout and "fake-embed" in text.stdout
    assert "entity_type" in text.stdout  # fields the source could not carry


def _one_line_error(result, code: int, fragment: str) -> None:
    assert result.exit_code == code, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines and lines[0].startswith("error: ") and fragment in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert len([ln for ln in lines if ln.startswith("error:")]) == 1


def test_verify_refuses_bad_archives(cli, archive: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.ragstore"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    _one_line_error(cli("archive", "verify", str(damaged)), 1, "")
    newer = tmp_path / "newer.ragstore"
    rewrite(archive, newer, manifest=lambda d: d.update(format_version=9))
    _one_line_error(cli("archive", "inspect", str(newer)), 1, "newer than this ragstore reads")
    truncated = tmp_path / "cut.ragstore"
    truncated.write_bytes(archive.read_bytes()[:5000])
    _one_line_error(cli("archive", "verify", str(truncated)), 1, "truncated")
    _one_line_error(cli("archive", "verify", str(tmp_path / "missing.ragstore")), 2, "does not exist")
    json_err = cli("--json", "archive", "verify", str(truncated))
    assert json_err.exit_code == 1 and json_err.json()["ok"] is False
