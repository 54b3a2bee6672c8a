"""Progress that tells the truth (cli/progress.py): an import into PostgreSQL drawn on a real 24-row
pseudo-terminal and read back through a terminal emulator (pyte), `--progress json` events, and
silence off a terminal or under --quiet."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pyte
import pytest

from ragstore_cli.cli.progress import PhaseTracker

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample_workspace"
PHASE_ROW = re.compile(r"^(\S) (verify|read|load|index|commit|copy)\b(.*)$")
FRACTION = re.compile(r"([\d,.]+)( [KMGT]?B)?/([\d,.]+)( [KMGT]?B)? ?(records|indexes)?")
SCALE = {None: 1, " B": 1, " KB": 1024, " MB": 1024 ** 2, " GB": 1024 ** 3, " TB": 1024 ** 4}


@pytest.fixture
def archive(cli, tmp_path: Path) -> Path:
    """The sample workspace (13 sections, 151 records, 16-dimensional vectors) as an archive."""
    sample = tmp_path / "sample"  # a copy: the export's lock state must not land in the checkout
    shutil.copytree(SAMPLE, sample)
    out = tmp_path / "sample.ragstore"
    result = cli("export", "--profile", "files", "--workspace", "", "-o", str(out), env={"WORKING_DIR": str(sample)})
    assert result.exit_code == 0, result.output
    return out


def _pg_import(archive: Path, workspace: str) -> list[str]:
    return ["import", str(archive), "--profile", "postgres", "--workspace", workspace, "--if-exists", "replace",
            "--embedding-model", "fake-embed"]


def _env(tmp_path: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES")}
    env.update({"TERM": "xterm-256color", "XDG_RUNTIME_DIR": str(tmp_path), "WORKING_DIR": str(tmp_path / "wd")})
    env.update(extra)
    return env


class Terminal:
    """A 24×80 pseudo-terminal running one ragstore command; every screen it showed, as an emulator saw it."""

    def __init__(self, rows: int = 24, columns: int = 80) -> None:
        self.screen = pyte.HistoryScreen(columns, rows, history=2000)
        self.stream = pyte.ByteStream(self.screen)
        self.rows, self.columns = rows, columns
        self.screens: list[list[str]] = []  # the screen as each line was drawn

    def run(self, args: list[str], env: dict[str, str], timeout: float = 120.0, *, stdout_to_file: bool = False) -> int:
        """Run `ragstore ARGS` on the terminal (with `stdout_to_file`, stdout goes to a file as in
        `ragstore … > out`, stderr stays on the terminal)."""
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", self.rows, self.columns, 0, 0))
        out = open(Path(env["XDG_RUNTIME_DIR"]) / "stdout.txt", "wb") if stdout_to_file else None
        proc = subprocess.Popen([sys.executable, "-m", "ragstore_cli", *args], stdin=slave, stdout=out or slave,
                                stderr=slave, env=env, cwd=env["XDG_RUNTIME_DIR"], close_fds=True)
        if out is not None:
            out.close()
        os.close(slave)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 1.0)
                if not ready:
                    continue
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                for piece in re.split(rb"(?=\r)", data):  # each redraw starts with \r: no frame is skipped
                    self.stream.feed(piece)
                    self.screens.append(list(self.screen.display))
            return proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            os.close(master)

    def every_line(self) -> list[str]:
        """What scrolled away and what is on the screen at the end."""
        scrolled = ["".join(line[x].data for x in range(self.columns)) for line in self.screen.history.top]
        return [line.rstrip() for line in scrolled + list(self.screen.display)]


def _rows(lines: list[str]) -> list[re.Match]:
    return [m for line in lines if (m := PHASE_ROW.match(line.strip()))]


def _amount(number: str, unit: str | None) -> float:
    return float(number.replace(",", "")) * SCALE[unit]


def test_postgres_import_on_a_24_row_terminal_draws_one_true_row_per_phase(archive, pg_database, tmp_path):
    """26 sections' worth of bars (13 verified, 13 loaded) become at most five rows; no row ever
    counts past its total; at the end every row is a finished one-line summary and none was left
    half-drawn in the scrollback; the index rebuild is a row of its own."""
    term = Terminal()
    code = term.run(_pg_import(archive, "progress_tty"), _env(tmp_path, pg_database))
    final = term.every_line()
    assert code == 0, "\n".join(final)
    assert any("imported 151 records" in line for line in final)
    most = 0
    for screen in term.screens:
        rows = _rows(screen)
        most = max(most, len(rows))
        for row in rows:
            for m in FRACTION.finditer(row.group(3)):
                done, total = _amount(m.group(1), m.group(2)), _amount(m.group(3), m.group(4))
                assert done <= total, row.group(0)
    assert most <= 5, "more rows than phases"
    rows = _rows(final)
    assert [r.group(2) for r in rows] == ["verify", "read", "load", "index", "commit"], "\n".join(final)
    assert all(r.group(1) == "✓" for r in rows), "\n".join(final)  # no spinner, no bar left behind
    summary = {r.group(2): r.group(3) for r in rows}
    assert re.match(r"\s+151 records", summary["load"]) and re.match(r"\s+[\d.]+ KB in \d+:\d\d", summary["verify"])
    assert re.match(r"\s+\d+ indexes in \d+:\d\d", summary["index"])
    assert "━" not in "\n".join(final)  # finished phases keep no bar


def test_progress_json_events_follow_the_phases_with_the_archives_totals(cli, archive, pg_database, tmp_path):
    inspect = cli("archive", "inspect", "--json", str(archive)).json()
    stored = sum(s["stored_bytes"] for s in inspect["sections"])
    records = sum(inspect["counts"].values())
    result = cli("--json", *_pg_import(archive, "progress_json"), "--progress", "json",
                 env={"WORKING_DIR": str(tmp_path / "wd"), **pg_database})
    assert result.exit_code == 0, result.output
    assert result.json()["ok"] is not False
    events = [json.loads(line) for line in result.stderr.splitlines()]  # nothing else on stderr
    started = [e["phase"] for e in events if e["event"] == "phase"]
    assert list(dict.fromkeys(started)) == ["verify", "read", "load", "index", "commit"], started
    assert started.count("index") == 3  # rebuilt as each vector section commits
    ended = [e["phase"] for e in events if e["event"] == "phase_done"]
    assert sorted(ended) == sorted(started) and ended[-2:] == ["load", "commit"]
    first: dict[str, dict] = {}
    for e in events:
        first.setdefault(e["phase"], e)
    last = {e["phase"]: e for e in events if e["event"] == "phase_done"}
    assert first["verify"]["unit"] == "bytes" and first["verify"]["total"] == last["verify"]["done"] == stored
    assert first["load"]["unit"] == "records" and first["load"]["total"] == last["load"]["done"] == records
    read = [e["section"] for e in events if e["phase"] == "read" and e["event"] == "section"]
    assert "vectors/chunks" in read  # the chunk-vector check's pass
    assert first["read"]["total"] == last["read"]["done"] == sum(inspect["counts"][k] for k in read)
    assert first["index"]["unit"] == "indexes" and last["index"]["done"] == last["index"]["total"] >= 3
    assert any(e["event"] == "section" and e["phase"] == "index" and e["section"] for e in events)
    assert last["commit"]["total"] is None and last["commit"]["elapsed"] >= 0
    for e in events:
        assert set(e) >= {"event", "phase", "section", "done", "total", "unit", "elapsed"}
        assert e["total"] is None or e["done"] <= e["total"], e
    load = [e for e in events if e["phase"] == "load" and e["event"] == "progress"]
    assert [e["done"] for e in load] == sorted(e["done"] for e in load)  # counts only go up


def test_export_counts_records_against_the_workspaces_count(tmp_path):
    """An export's load row counts records against what the workspace holds (so it has an ETA), naming
    the section it is at."""
    sample = tmp_path / "sample"
    shutil.copytree(SAMPLE, sample)
    term = Terminal()
    code = term.run(["export", "--profile", "files", "--workspace", "", "-o", str(tmp_path / "a.ragstore")],
                    _env(tmp_path, {"WORKING_DIR": str(sample)}))
    final = term.every_line()
    assert code == 0, "\n".join(final)
    seen = [row.group(3) for screen in term.screens for row in _rows(screen) if row.group(2) == "load"]
    assert any(re.search(r"kv/full_docs .* \d+/151 records", text) for text in seen), seen
    assert [(r.group(1), r.group(2)) for r in _rows(final)] == [("✓", "load"), ("✓", "commit")]


def test_vectors_compress_and_workspace_copy_draw_their_phases(archive, tmp_path):
    """Every command that moves records draws: an archive re-encoded (a move without the check before
    it), a workspace copied natively (the backend's own copy, timed)."""
    term = Terminal()
    code = term.run(["vectors", "compress", str(archive), "-o", str(tmp_path / "f16.ragstore")], _env(tmp_path, {}))
    final = term.every_line()
    assert code == 0, "\n".join(final)
    assert [(r.group(1), r.group(2)) for r in _rows(final)] == [("✓", "load"), ("✓", "commit")], "\n".join(final)
    term = Terminal()  # the archive fixture copied the sample workspace to tmp_path/sample
    code = term.run(["workspace", "copy", "", "copied", "--profile", "files"],
                    _env(tmp_path, {"WORKING_DIR": str(tmp_path / "sample")}))
    final = term.every_line()
    assert code == 0, "\n".join(final)
    assert [(r.group(1), r.group(2)) for r in _rows(final)] == [("✓", "copy")], "\n".join(final)


def test_transfer_reads_the_target_back_as_its_verify_phase(cli, tmp_path):
    """A direct transfer's read-back is the verify phase, counted in records against what it wrote."""
    sample = tmp_path / "sample"
    shutil.copytree(SAMPLE, sample)
    result = cli("transfer", "--from", "files", "--to", "files", "--workspace", "", "--target-workspace", "t2",
                 "--json", "--progress", "json", env={"WORKING_DIR": str(sample)})
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stderr.splitlines()]
    done = {e["phase"]: e for e in events if e["event"] == "phase_done"}
    assert list(done) == ["read", "load", "verify", "commit"]
    assert done["verify"]["unit"] == "records" and done["verify"]["done"] == done["verify"]["total"] == 151
    assert done["load"]["done"] == sum(result.json()["counts"].values()) == 151


def test_a_failure_leaves_its_phase_marked_stopped(cli, archive, tmp_path):
    """A damaged archive stops the check: its row ends as ✗ with how far it got, never a live bar;
    the JSON stream says `phase_stopped`."""
    damaged = tmp_path / "damaged.ragstore"
    data = bytearray(archive.read_bytes())
    data[len(data) * 2 // 3] ^= 0xFF
    damaged.write_bytes(bytes(data))
    term = Terminal()
    code = term.run(["import", str(damaged), "--profile", "files", "--workspace", "w"], _env(tmp_path, {}))
    final = term.every_line()
    assert code == 1, "\n".join(final)
    rows = _rows(final)
    assert [(r.group(1), r.group(2)) for r in rows] == [("✗", "verify")], "\n".join(final)
    assert re.match(r"\s+stopped at [\d.]+ KB after \d+:\d\d", rows[0].group(3))
    result = cli("--json", "import", str(damaged), "--profile", "files", "--workspace", "w", "--progress", "json",
                 env={"WORKING_DIR": str(tmp_path / "wd")})
    assert result.exit_code == 1
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert events[-1]["event"] == "phase_stopped" and events[-1]["phase"] == "verify"
    assert [line for line in result.stderr.splitlines() if not line.startswith("{")][0].startswith("error: ")


def test_nothing_is_drawn_off_a_terminal(cli, archive, tmp_path):
    result = cli("import", str(archive), "--profile", "files", "--workspace", "w",
                 env={"WORKING_DIR": str(tmp_path / "wd")})
    assert result.exit_code == 0, result.output
    assert "imported 151 records" in result.stdout
    assert not _rows(result.stderr.splitlines()) and "━" not in result.stderr and "\r" not in result.stderr


def test_nothing_is_drawn_when_stdout_is_not_a_terminal(archive, tmp_path):
    """`ragstore import … > log` on a terminal: stderr is still the terminal, yet nothing is drawn."""
    term = Terminal()
    code = term.run(["import", str(archive), "--profile", "files", "--workspace", "w"], _env(tmp_path, {}),
                    stdout_to_file=True)
    assert code == 0, "\n".join(term.every_line())
    assert "imported 151 records" in (tmp_path / "stdout.txt").read_text()
    assert not any(_rows(screen) for screen in term.screens), "\n".join(term.every_line())


def test_quiet_draws_nothing_on_a_terminal(archive, tmp_path):
    term = Terminal()
    code = term.run(["import", str(archive), "--profile", "files", "--workspace", "w", "--quiet"], _env(tmp_path, {}))
    lines = term.every_line()
    assert code == 0, "\n".join(lines)
    assert any("imported 151 records" in line for line in lines)
    assert not any(_rows(screen) for screen in term.screens), "\n".join(lines)


def test_a_terminal_without_quiet_does_draw(archive, tmp_path):
    """The control for the test above: the same import on the same terminal draws its phases."""
    term = Terminal()
    code = term.run(["import", str(archive), "--profile", "files", "--workspace", "w"], _env(tmp_path, {}))
    assert code == 0
    assert [r.group(2) for r in _rows(term.every_line())] == ["verify", "load", "commit"]


def test_a_narrow_terminal_shortens_names_never_numbers(archive, tmp_path):
    """On 40 columns each phase is still one row: the name and the bar give up their room, a count
    and its total stay whole (a cut `151/15…` would read as a smaller total)."""
    term = Terminal(rows=12, columns=40)
    code = term.run(["import", str(archive), "--profile", "files", "--workspace", "w"], _env(tmp_path, {}))
    final = term.every_line()
    assert code == 0, "\n".join(final)
    counted = 0
    for screen in term.screens:
        rows = _rows(screen)
        assert len(rows) <= 3
        for row in rows:
            if "/" in row.group(3):
                assert re.search(r"\d+/\d+ records|[\d.]+ [KMG]?B/[\d.]+ [KMG]?B", row.group(3)), row.group(0)
                counted += 1
    assert counted, "no running row was seen"
    assert [(r.group(1), r.group(2)) for r in _rows(final)] == [("✓", "verify"), ("✓", "load"), ("✓", "commit")]


def test_quiet_and_progress_json_contradict(cli, archive, tmp_path):
    result = cli("--quiet", "import", str(archive), "--progress", "json", env={"WORKING_DIR": str(tmp_path / "wd")})
    assert result.exit_code == 2 and "--quiet and --progress json" in result.stderr


def test_a_count_past_its_total_drops_the_total():
    """A source that yields more than it counted (a workspace written to while read) never shows 8/4."""
    seen: list[tuple[int, int | None]] = []

    class Watch(PhaseTracker):
        def changed(self, event, tally, section_total=None):
            seen.append((tally.done, tally.total))

    watch = Watch()
    watch.phase("load", 4)
    watch.section("kv/full_docs", 4)
    for _ in range(8):
        watch.progress("kv/full_docs", 1, 0)
    watch.phase_done("load")
    assert seen[-1] == (8, None)
    assert all(total is None or done <= total for done, total in seen)
