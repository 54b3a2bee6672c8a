"""Profiles map roles to backends; unknown or unavailable backends fail with a one-line UsageError."""

from __future__ import annotations

import pytest

from ragstore_cli.records import Role
from ragstore_cli.backends.registry import backend_module, describe, parse_profile
from ragstore_cli.config import load_settings
from ragstore_cli.errors import UsageError


def _settings(**env: str):
    return load_settings(environ=env)


def test_single_backend_serves_every_role():
    assert set(parse_profile("files").values()) == {"files"}
    assert describe(parse_profile("postgres")) == "kv=postgres,vector=postgres,graph=postgres,doc_status=postgres"


def test_list_gives_each_role_to_the_first_backend_that_serves_it():
    profile = parse_profile("neo4j,postgres")
    assert profile == {Role.KV: "postgres", Role.VECTOR: "postgres", Role.GRAPH: "neo4j", Role.DOC_STATUS: "postgres"}


def test_explicit_roles_and_defaults_for_the_rest():
    profile = parse_profile("kv=redis,graph=neo4j", _settings(LIGHTRAG_VECTOR_STORAGE="PGVectorStorage"))
    assert profile == {Role.KV: "redis", Role.VECTOR: "postgres", Role.GRAPH: "neo4j", Role.DOC_STATUS: "files"}


def test_default_profile_from_lightrag_settings():
    settings = _settings(LIGHTRAG_KV_STORAGE="PGKVStorage", LIGHTRAG_GRAPH_STORAGE="Neo4JStorage",
                         LIGHTRAG_DOC_STATUS_STORAGE="RedisDocStatusStorage")
    assert parse_profile(None, settings) == {Role.KV: "postgres", Role.VECTOR: "files", Role.GRAPH: "neo4j",
                                             Role.DOC_STATUS: "redis"}


@pytest.mark.parametrize("text, message", [
    ("mongo", "unknown backend"),
    ("kv=neo4j", "cannot serve the kv role"),
    ("kv=files,kv=postgres", "given twice"),
    ("colour=files", "unknown role"),
    ("files,,postgres", "empty entry"),
    ("files,postgres", "gives postgres no role"),
    ("neo4j", "leaves roles without a backend"),
])
def test_bad_profiles_are_refused(text, message):
    with pytest.raises(UsageError, match=message):
        parse_profile(text)


@pytest.mark.parametrize("text, roles, explicit, reordered", [
    ("postgres,neo4j", "kv=postgres,vector=postgres,graph=postgres,doc_status=postgres", "graph=neo4j,postgres",
     "neo4j,postgres"),
    ("postgres,redis", "kv=postgres,vector=postgres,graph=postgres,doc_status=postgres",
     "kv=redis,doc_status=redis,postgres", "redis,postgres"),
])
def test_a_backend_left_without_a_role_says_who_took_which_and_the_explicit_form(text, roles, explicit, reordered):
    with pytest.raises(UsageError) as caught:
        parse_profile(text)
    assert roles in str(caught.value) and str(caught.value).endswith(f"name its role: {explicit}")  # also under --json
    assert reordered in caught.value.hint
    # the forms the hint offers do what it says
    assert parse_profile(explicit)[Role.GRAPH if "graph=" in explicit else Role.KV] == text.split(",")[1]
    assert parse_profile(reordered) == parse_profile(explicit)


def test_unknown_backend_lists_the_valid_forms(cli):
    result = cli("workspace", "list", "--profile", "mongo")
    assert result.exit_code == 2
    error, hint = result.stderr.strip().splitlines()
    assert error.startswith("error: unknown backend 'mongo' in profile 'mongo'")
    assert hint.startswith("hint: a profile is one backend") and "graph=neo4j" in hint and "neo4j,postgres" in hint


def test_unsupported_lightrag_class_is_refused():
    with pytest.raises(UsageError, match="PGGraphStorage is not supported"):
        parse_profile(None, _settings(LIGHTRAG_GRAPH_STORAGE="PGGraphStorage"))


def test_missing_backend_module_is_a_usage_error(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "ragstore_cli.backends.redis", None)  # import fails like a missing module
    with pytest.raises(UsageError, match="backend redis is not available"):
        backend_module("redis")
