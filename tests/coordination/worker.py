"""A real process for the coordination tests: `python -m tests.coordination.worker ACTION ...`.

Settings come from the environment (WORKING_DIR, POSTGRES_*, REDIS_URI), as for any ragstore run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from ragstore_cli.config import load_settings
from ragstore_cli.coordination import SharedNamespace, open_coordinator, update_namespace_data, workspace_lock


async def hold(args: argparse.Namespace) -> None:
    """Take a lock, announce it in a file, then sleep (to be killed or to time out)."""
    settings = load_settings()
    if args.workspace is not None:
        async with workspace_lock(settings, args.workspace, command=args.command, timeout=args.timeout,
                                  backend=args.backend):
            Path(args.ready).write_text(str(os.getpid()))
            await asyncio.sleep(args.seconds)
        return
    async with open_coordinator(settings, args.backend, command=args.command, lease=args.lease) as coord:
        async with coord.lock(args.key, timeout=args.timeout):
            Path(args.ready).write_text(str(os.getpid()))
            await asyncio.sleep(args.seconds)


async def count(args: argparse.Namespace) -> None:
    """M read-increment-write rounds of a counter file under a keyed lock (a lost update shows)."""
    settings = load_settings()
    counter = Path(args.counter)
    async with open_coordinator(settings, args.backend, command="count", lease=args.lease) as coord:
        for _ in range(args.n):
            async with coord.keyed_lock([args.key, "other"], namespace="counter", timeout=60):
                value = int(counter.read_text() or 0) if counter.exists() else 0
                await asyncio.sleep(0)  # give a racing process every chance to interleave
                tmp = counter.with_name(f"{counter.name}.{os.getpid()}")
                tmp.write_text(str(value + 1))
                os.replace(tmp, counter)


async def save(args: argparse.Namespace) -> None:
    """N saves of a shared JSON dict file, each adding one key, under the update-flag rule."""
    settings = load_settings()
    target = Path(args.file)
    state: dict[str, int] = {}
    pending: list[str] = []

    async def load() -> None:
        state.clear()
        if target.exists():
            state.update(json.loads(target.read_text()))

    async def write() -> None:
        tmp = target.with_name(f"{target.name}.{os.getpid()}")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, target)

    async def replay() -> None:
        for key in pending:
            state[key] = 1

    async with open_coordinator(settings, args.backend, command="save", lease=args.lease) as coord:
        shared = SharedNamespace(coord, args.namespace, load=load, write=write, timeout=60)
        await shared.before_read()
        initial = shared.reloads
        if args.go:
            Path(f"{args.go}.{args.id}.ready").write_text("loaded")  # we loaded before anyone saves
        await _wait_for(args.go)
        for i in range(args.n):
            key = f"{args.id}-{i}"
            pending[:] = [key]
            state[key] = 1
            await shared.save(replay)
            await asyncio.sleep(args.pause)
        print(json.dumps({"reloads": shared.reloads - initial}))


async def _wait_for(path: str | None, limit: float = 30.0) -> None:
    """A start barrier, so that racing processes really overlap."""
    for _ in range(int(limit / 0.01)):
        if path is None or Path(path).exists():
            return
        await asyncio.sleep(0.01)
    raise SystemExit("start barrier never opened")


async def nsdata(args: argparse.Namespace) -> None:
    """N increments of a field of the shared namespace data (LightRAG's pipeline-status style)."""
    settings = load_settings()

    def bump(data: dict) -> None:
        data["count"] = int(data.get("count", 0)) + 1
        data.setdefault("by", {})[args.id] = data.get("by", {}).get(args.id, 0) + 1

    async with open_coordinator(settings, args.backend, command="nsdata", lease=args.lease) as coord:
        for _ in range(args.n):
            await update_namespace_data(coord, args.namespace, bump, timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=["hold", "count", "save", "nsdata"])
    parser.add_argument("--backend", default=None)
    parser.add_argument("--key", default="k")
    parser.add_argument("--workspace", default=None)
    parser.add_argument("--command", default="test-holder")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--lease", type=float, default=None)
    parser.add_argument("--ready", default="ready")
    parser.add_argument("--counter", default="counter")
    parser.add_argument("--file", default="shared.json")
    parser.add_argument("--namespace", default="ns")
    parser.add_argument("--id", default=str(os.getpid()))
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("--go", default=None)
    parser.add_argument("--pause", type=float, default=0.0)
    args = parser.parse_args()
    asyncio.run({"hold": hold, "count": count, "save": save, "nsdata": nsdata}[args.action](args))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
