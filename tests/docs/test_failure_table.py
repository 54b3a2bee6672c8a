"""docs/check-connections.md's "What each failure says" is the table connect/failures.py builds its
messages from: this test renders it from `failures.CHECKS` and `failures.describe` and compares.

To rewrite the doc's table after a change: python -m tests.docs.test_failure_table
"""

from __future__ import annotations

import sys
from pathlib import Path

from ragstore_cli.connect import failures

DOC = Path(__file__).resolve().parents[2] / "docs" / "check-connections.md"
BEGIN = "<!-- failure table: generated from ragstore_cli/connect/failures.py by tests/docs/test_failure_table.py -->"
END = "<!-- end of failure table -->"
BACKENDS = ("postgres", "neo4j", "redis")
PLACEHOLDER = failures.Where("TARGET", "HOST", "USER", "DB")


def _retried(kind: str) -> str:
    if kind in failures.RETRIED:
        return "yes, within RAGSTORE_COMMAND_TIMEOUT"
    if kind == failures.TIMEOUT:
        return "Bolt, Redis: yes (FalkorDB's stalls)"
    return "no"


def render() -> str:
    """The table, as the doc must hold it."""
    lines = ["| kind | the line says | retried while connecting | " + " | ".join(BACKENDS) + " |",
             "|---|---|---|" + "---|" * len(BACKENDS)]
    for kind in failures.KINDS:
        said = failures.describe("postgres", failures.Failure(kind, "…"), PLACEHOLDER, seconds=5).split(" — ")[0]
        checks = [failures.CHECKS[backend][kind].text() for backend in BACKENDS]
        lines.append(f"| `{kind}` | {said} | {_retried(kind)} | " + " | ".join(checks) + " |")
    return "\n".join(lines)


def _doc_table(text: str) -> str:
    assert BEGIN in text and END in text, f"{DOC.name} lost the failure table's markers"
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def test_the_doc_shows_the_table_the_messages_come_from():
    assert _doc_table(DOC.read_text()) == render(), "run: python -m tests.docs.test_failure_table"


def test_every_backend_names_what_to_check_for_every_kind():
    for backend in BACKENDS:
        assert set(failures.CHECKS[backend]) == set(failures.KINDS), backend
        assert all(check.text() for check in failures.CHECKS[backend].values()), backend


if __name__ == "__main__":  # rewrite the doc's table
    text = DOC.read_text()
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    DOC.write_text(f"{before}{BEGIN}\n{render()}\n{END}{after}")
    sys.stdout.write(f"rewrote the failure table in {DOC}\n")
