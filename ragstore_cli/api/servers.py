"""`ragstore dev up|down|status` (local servers for trying ragstore) and `ragstore demo`."""

from __future__ import annotations

from pathlib import Path

from ragstore_cli.demo import DemoReport, run_demo
from ragstore_cli.embedded import dev
from ragstore_cli.embedded.dev import DevServers
from ragstore_cli.engine.observer import NOTHING, Observer

DEV_DATA_DIR = Path(".ragstore-dev")


def dev_up(data_dir: str | Path = DEV_DATA_DIR, *, graph: str | None = None, write_env: str | Path | None = None,
           force: bool = False) -> DevServers:
    """Start embedded PostgreSQL + pgvector and a Bolt server (`graph`: falkordb or neo4j; None: the one
    this data folder used last), bound to loopback. `write_env` also receives their settings; a file
    ragstore did not write is refused (before anything starts) unless `force`."""
    target = None if write_env is None else Path(write_env)
    if target is not None:
        dev.check_env_target(target, force=force)
    servers = dev.up(Path(data_dir), graph)
    if target is not None:
        dev.write_env_copy(servers, target, force=force)
    return servers


def dev_down(data_dir: str | Path = DEV_DATA_DIR) -> DevServers | None:
    """Stop the servers (their data stays); None when none were started in `data_dir`."""
    return dev.down(Path(data_dir))


def dev_status(data_dir: str | Path = DEV_DATA_DIR) -> DevServers | None:
    """The servers started in `data_dir` (`.status()` says whether each runs), or None."""
    return dev.load(Path(data_dir))


async def demo(data_dir: str | Path = DEV_DATA_DIR, *, sample: str | Path | None = None, graph: str | None = None,
               observer: Observer = NOTHING) -> DemoReport:
    """The README's main job: start the dev servers, export the sample workspace, import it into
    PostgreSQL + the Bolt server, export it again and compare the counts."""
    return await run_demo(Path(data_dir), sample=None if sample is None else Path(sample), observer=observer,
                          graph=graph)
