"""Reading the runnable examples out of the docs, running them, and comparing their output.

A fenced block right after the line `<!-- runnable -->` is executed by tests/docs/test_runnable.py:
- ```bash / ```sh: every command must exit 0 (write `cmd || echo …` or `cmd; echo "exit $?"` where a
  failure is the point);
- ```console: `$ command` lines, each followed by the output it prints (stdout and stderr as a
  terminal shows them); a command must exit 0 and print what follows it. In expected output `...`
  inside a line matches any text, a line holding only `...` matches any number of lines, and runs
  of spaces count as one (table columns move with their contents).
All blocks of a page run in order in one shell, so `export`, `cd` and files carry over.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "<!-- runnable -->"
FENCE = re.compile(r"^(```+)\s*([\w-]*)\s*$")


@dataclass
class Command:
    text: str
    expected: list[str] | None  # None: output not shown in the doc, not compared
    line: int


@dataclass
class Block:
    page: Path
    line: int
    language: str
    commands: list[Command] = field(default_factory=list)


def blocks(page: Path) -> list[Block]:
    """The runnable blocks of a markdown page, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        if lines[index].strip() != MARKER:
            index += 1
            continue
        start = index + 1
        fence = FENCE.match(lines[start]) if start < len(lines) else None
        if fence is None:
            raise ValueError(f"{page}:{index + 1}: {MARKER} is not followed by a fenced block")
        end = start + 1
        while end < len(lines) and lines[end].strip() != fence.group(1):
            end += 1
        body = lines[start + 1:end]
        block = Block(page, start + 1, fence.group(2) or "bash")
        block.commands = _console(body, start + 2) if block.language == "console" else _script(body, start + 2)
        found.append(block)
        index = end + 1
    return found


def _script(body: list[str], first: int) -> list[Command]:
    commands: list[Command] = []
    pending, at = "", first
    for number, line in enumerate(body, first):
        if not pending:
            at = number
        pending += line
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        if pending.strip() and not pending.lstrip().startswith("#"):
            commands.append(Command(pending.strip(), None, at))
        pending = ""
    return commands


def _console(body: list[str], first: int) -> list[Command]:
    commands: list[Command] = []
    for number, line in enumerate(body, first):
        if line.startswith("$ "):
            commands.append(Command(line[2:].strip(), [], number))
        elif commands and commands[-1].text.endswith("\\") and not commands[-1].expected:
            commands[-1].text = commands[-1].text[:-1] + " " + line.strip()
        elif commands:
            commands[-1].expected.append(line)  # type: ignore[union-attr]
        elif line.strip():
            raise ValueError(f"line {number}: output before the first `$ ` command")
    return commands


def _normal(lines: list[str]) -> list[str]:
    out = [re.sub(r"\s+", " ", line).strip() for line in lines]
    while out and not out[0]:
        out.pop(0)
    while out and not out[-1]:
        out.pop()
    return out


def matches(expected: list[str], actual: str) -> bool:
    """Whether `actual` output fits the `expected` lines of a doc (see the module docstring)."""
    pattern = ""
    for line in _normal(expected):
        if line == "...":
            pattern += r"(?:[^\n]*\n)*?"
        else:
            pattern += r"[^\n]*?".join(re.escape(part) for part in line.split("...")) + r"\n"
    text = "".join(line + "\n" for line in _normal(actual.splitlines()))
    return re.fullmatch(pattern, text) is not None


def script(commands: list[Command], marker: str) -> str:
    """One bash script running every command, each output followed by `marker <n> <exit code>`."""
    parts = ["set -o pipefail"]
    for number, command in enumerate(commands):
        parts.append(f"{{ {command.text}\n}} 2>&1; rc=$?; printf '\\n{marker} {number} %d\\n' \"$rc\"; "
                     f"[ \"$rc\" -eq 0 ] || exit 97")
    return "\n".join(parts) + "\n"


def split_outputs(text: str, marker: str) -> list[tuple[str, int]]:
    """[(output, exit code)] per command, from the script's combined output."""
    results: list[tuple[str, int]] = []
    current: list[str] = []
    for line in text.split("\n"):
        found = re.fullmatch(re.escape(marker) + r" (\d+) (\d+)", line)
        if found:
            output = "\n".join(current)
            results.append((output[:-1] if output.endswith("\n") else output, int(found.group(2))))
            current = []
        else:
            current.append(line)
    return results


def quoted(words: list[str]) -> str:
    return " ".join(shlex.quote(w) for w in words)
