"""Hypothesis: configuration values and workspace names never crash, never escape, always one line."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from ragstore_cli.config import SPECS, load_settings
from ragstore_cli.errors import ConfigError, UsageError
from ragstore_cli.workspace import files_dir, neo4j_label, quote_label, redis_glob_escape, redis_prefix, validate_workspace

NAMES = [spec.env for spec in SPECS]
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(NAMES), value=TEXT.filter(lambda v: "\x00" not in v))
def test_any_value_loads_or_names_its_variable(tmp_path: Path, name: str, value: str):
    try:
        load_settings(environ={name: value}, cwd=tmp_path)
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message
        assert message.split(":", 1)[0] in NAMES


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.one_of(TEXT, st.sampled_from(["..", "../x", "a/../../b", "*", "a`b", "x" * 10_000, "\x00", " a", "ok-name"])))
def test_workspace_names_never_escape(tmp_path: Path, name: str):
    try:
        valid = validate_workspace(name)
    except UsageError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 300
        return
    folder = files_dir(tmp_path, valid)
    assert folder == tmp_path.resolve() or folder.parent == tmp_path.resolve()
    assert "`" not in neo4j_label(valid) or quote_label(neo4j_label(valid)).count("`") % 2 == 0
    prefix = redis_prefix(valid, "full_docs")
    assert not any(c in redis_glob_escape(prefix).replace("\\*", "").replace("\\?", "").replace("\\[", "").replace("\\]", "")
                   for c in "*?[]")
