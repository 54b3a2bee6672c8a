"""Hypothesis: a password in REDIS_URI or NEO4J_URI never reaches output, whatever its characters
(a raw `@`, `/`, `:`, quotes, backslashes, spaces, non-ASCII: people paste them unencoded)."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Iterator

from hypothesis import HealthCheck, example, given, settings, strategies as st

from ragstore_cli import redact as redact_module
from ragstore_cli.config import load_settings
from ragstore_cli.errors import ConfigError
from ragstore_cli.redact import MASK, mask_uri, redact, register_uri_password

PASSWORD = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=24)
SCHEMES = st.sampled_from([("redis", "REDIS_URI", "default", "127.0.0.1:1/0"),
                           ("rediss", "REDIS_URI", "", "localhost:6380"),
                           ("bolt", "NEO4J_URI", "neo4j", "127.0.0.1:2"),
                           ("neo4j+s", "NEO4J_URI", "neo4j", "db.example:7687")])


@contextlib.contextmanager
def secrets_restored() -> Iterator[None]:
    """Every example registers its password; keep them from masking text in later tests."""
    saved = set(redact_module._secrets)
    try:
        yield
    finally:
        redact_module._secrets.clear()
        redact_module._secrets.update(saved)


def leaked(password: str, shown: str, baseline: str) -> list[str]:
    """Pieces (3+ characters) of the password visible in `shown` that `baseline` (the same text made
    without the password) does not explain: `127` may come from the host, `use` from "refused"."""
    visible = shown.replace(MASK, "\x00")
    pieces = {password[i:j] for i in range(len(password)) for j in range(i + 3, len(password) + 1)}
    return sorted(p for p in pieces if p in visible and p not in baseline and p.strip())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(password=PASSWORD, scheme=SCHEMES)
@example(password="Sup3r@Secr3t", scheme=("redis", "REDIS_URI", "default", "127.0.0.1:1/0"))
@example(password="p@ss/w:rd?#x", scheme=("bolt", "NEO4J_URI", "neo4j", "127.0.0.1:2"))
@example(password='qu"ote\\back slash', scheme=("redis", "REDIS_URI", "default", "127.0.0.1:1/0"))
def test_uri_passwords_are_masked_whole(tmp_path: Path, password: str, scheme):
    name, variable, user, host = scheme
    uri, without = f"{name}://{user}:{password}@{host}", f"{name}://{user}:@{host}"
    with secrets_restored():
        try:
            resolved = load_settings(environ={variable: uri}, cwd=tmp_path)
        except ConfigError as exc:  # a raw / ? # [ ] would make the drivers read part of it as the host
            assert set(password) & set("/?#[]"), str(exc)
            assert leaked(password, redact(str(exc)), without) == [], str(exc)
            register_uri_password(uri)  # what load_settings did before refusing
        else:
            masked = mask_uri(resolved.values[variable].value)
            assert leaked(password, masked, without) == [], masked
        for render in (lambda u: f"cannot reach {u} (refused)", lambda u: f"Given URI: {u!r}.",
                       lambda u: json.dumps({"uri": u}, indent=2), lambda u: json.dumps({"uri": u}, ensure_ascii=True)):
            shown = redact(render(uri))
            assert leaked(password, shown, render(without)) == [], shown


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(password=PASSWORD.filter(lambda p: len(p) >= 3))
@example(password="An0ther@Pass")
def test_config_show_and_a_failing_check_never_print_it(cli, password: str):
    def output(args: tuple[str, ...], secret: str) -> tuple[int, str]:
        result = cli(*args, env={"NEO4J_URI": f"bolt://neo4j:{secret}@127.0.0.1:2", "NEO4J_USERNAME": "neo4j"})
        text = result.stdout + result.stderr
        return result.exit_code, re.sub(r'"latency_ms": [0-9.]+|[0-9.]+ ms', "", text)  # timings vary

    with secrets_restored():
        for args in (("config", "show"), ("--json", "config", "show"),
                     ("--json", "check-connections", "-b", "neo4j", "--timeout", "1")):
            code, shown = output(args, password)
            assert code != 2 or set(password) & set("/?#[]"), shown
            _, baseline = output(args, "Zz9")  # the same command with a harmless password: its own words
            assert leaked(password, shown, baseline) == [], shown
