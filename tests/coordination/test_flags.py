"""Update flags and shared namespace data, step by step (two 'processes' = two coordinators)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragstore_cli.coordination import SharedNamespace, UpdateFlag, get_namespace_data, open_coordinator, set_namespace_data
from ragstore_cli.coordination.memory import MemoryBackend
from ragstore_cli.coordination.base import Coordinator


@pytest.fixture(params=["memory", "file", "postgres", "redis"])
def two_coordinators(request, tmp_path: Path, make_settings):
    env: dict[str, str] = {}
    if request.param == "postgres":
        env.update(request.getfixturevalue("pg_database"))
    elif request.param == "redis":
        env.update(request.getfixturevalue("redis_env"))
    settings = make_settings(env)
    if request.param == "memory":
        backend = MemoryBackend()  # one shared store, two views: like two storage instances
        return Coordinator(backend), Coordinator(backend)
    return open_coordinator(settings, request.param), open_coordinator(settings, request.param)


async def test_flags_follow_the_other_side(two_coordinators, tmp_path: Path) -> None:
    a, b = two_coordinators
    namespace = f"flags-{tmp_path.name}"
    try:
        flag_a, flag_b = UpdateFlag(a, namespace), UpdateFlag(b, namespace)
        assert await flag_a.is_set()  # never loaded: a load is due
        await flag_a.loaded()
        await flag_b.loaded()
        assert not await flag_a.is_set() and not await flag_b.is_set()
        version = await flag_a.mark_updated()
        assert not await flag_a.is_set()  # our own write does not make us reload
        assert await flag_b.is_set()
        await flag_b.loaded(version)
        assert not await flag_b.is_set()
        new = await set_namespace_data(b, namespace, {"busy": True, "job": "import"})
        assert new == version + 1 and await flag_a.is_set()
        assert await get_namespace_data(a, namespace) == (new, {"busy": True, "job": "import"})
        assert await b.backend.bump_version(namespace) == new + 1  # a bare bump keeps the data
        assert (await get_namespace_data(a, namespace))[1] == {"busy": True, "job": "import"}
    finally:
        await a.close()
        await b.close()


async def test_a_save_that_finds_its_flag_set_reloads_instead_of_overwriting(two_coordinators, tmp_path: Path) -> None:
    a, b = two_coordinators
    target = tmp_path / "store.json"
    target.write_text("{}")

    def storage(coord: Coordinator) -> tuple[SharedNamespace, dict]:
        state: dict = {}

        async def load() -> None:
            state.clear()
            state.update(json.loads(target.read_text()))

        async def write() -> None:
            target.write_text(json.dumps(state))

        return SharedNamespace(coord, f"save-{tmp_path.name}", load=load, write=write, timeout=5), state

    try:
        ns_a, state_a = storage(a)
        ns_b, state_b = storage(b)
        await ns_a.before_read()
        await ns_b.before_read()  # both loaded the same (empty) state
        state_a["from_a"] = 1
        assert await ns_a.save() is False
        state_b["from_b"] = 1

        async def replay() -> None:
            state_b["from_b"] = 1

        assert await ns_b.save(replay) is True  # it found its flag set: reloaded, replayed, then wrote
        assert json.loads(target.read_text()) == {"from_a": 1, "from_b": 1}
        await ns_a.before_read()
        assert state_a == {"from_a": 1, "from_b": 1}
    finally:
        await a.close()
        await b.close()
