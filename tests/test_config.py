"""Settings: LightRAG's names, precedence flag > env > .env > config.ini > default, one-line errors."""

from __future__ import annotations

import os
import re
import typing
from dataclasses import fields
from pathlib import Path

import pytest

from ragstore_cli.config import GROUPS, SPECS, Settings, load_settings
from ragstore_cli.errors import ConfigError
from ragstore_cli.redact import redact
from ragstore_cli.workspace import Workspace

PACKAGE = Path(__file__).resolve().parents[1] / "ragstore_cli"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_precedence_flag_env_dotenv_ini_default(tmp_path: Path):
    _write(tmp_path / "config.ini", "[postgres]\nhost = ini-host\nport = 1111\nuser = ini-user\ndatabase = ini-db\n")
    _write(tmp_path / ".env", "POSTGRES_HOST=env-file-host\nPOSTGRES_PORT=2222\n")
    environ = {"POSTGRES_HOST": "env-host"}
    settings = load_settings(flags={"POSTGRES_HOST": "flag-host"}, environ=environ, cwd=tmp_path)
    assert (settings.postgres.host, settings.source("POSTGRES_HOST")) == ("flag-host", "flag")
    settings = load_settings(environ=environ, cwd=tmp_path)
    assert (settings.postgres.host, settings.source("POSTGRES_HOST")) == ("env-host", "env")
    assert (settings.postgres.port, settings.source("POSTGRES_PORT")) == (2222, ".env")
    assert (settings.postgres.user, settings.source("POSTGRES_USER")) == ("ini-user", "config.ini")
    assert (settings.postgres.max_connections, settings.source("POSTGRES_MAX_CONNECTIONS")) == (50, "default")


def test_explicit_env_file_replaces_dotenv(tmp_path: Path):
    _write(tmp_path / ".env", "WORKSPACE=from-dotenv\n")
    other = _write(tmp_path / "prod.env", "WORKSPACE=from-prod\n")
    assert load_settings(env_file=other, environ={}, cwd=tmp_path).lightrag.workspace == "from-prod"


def test_unix_socket_host_and_server_settings(tmp_path: Path):
    env = {"POSTGRES_HOST": "/var/run/postgresql", "POSTGRES_SERVER_SETTINGS": "jit=off&work_mem=64MB"}
    settings = load_settings(environ=env, cwd=tmp_path)
    assert settings.postgres.host == "/var/run/postgresql"
    assert settings.postgres.server_settings == {"jit": "off", "work_mem": "64MB"}


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"POSTGRES_PORT": "abc"}, "POSTGRES_PORT"),
        ({"POSTGRES_SSL_MODE": "sometimes"}, "POSTGRES_SSL_MODE"),
        ({"LIGHTRAG_KV_STORAGE": "SqliteKVStorage"}, "LIGHTRAG_KV_STORAGE"),
        ({"POSTGRES_SSL_ROOT_CERT": "/nonexistent/root.crt"}, "POSTGRES_SSL_ROOT_CERT"),
        ({"EMBEDDING_DIM": "-3"}, "EMBEDDING_DIM"),
        ({"NEO4J_URI": "localhost:7687"}, "NEO4J_URI"),
        ({"POSTGRES_VECTOR_INDEX_TYPE": "BTREE"}, "POSTGRES_VECTOR_INDEX_TYPE"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, env, variable):
    with pytest.raises(ConfigError) as info:
        load_settings(environ=env, cwd=tmp_path)
    assert str(info.value).startswith(f"{variable}:")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("env, variable", [({"POSTGRES_PORT": "abc"}, "POSTGRES_PORT"),
                                           ({"POSTGRES_SSL_MODE": "sometimes"}, "POSTGRES_SSL_MODE"),
                                           ({"LIGHTRAG_GRAPH_STORAGE": "Nope"}, "LIGHTRAG_GRAPH_STORAGE")])
def test_cli_bad_value_exit_2_one_line(cli, env, variable):
    result = cli("check-connections", env=env)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"error: {variable}:")
    assert "Traceback" not in result.output


def test_unreadable_dotenv(cli, tmp_path: Path):
    if os.geteuid() == 0:
        (tmp_path / ".env").mkdir()  # root reads any file; a folder named .env cannot be read either
    else:
        _write(tmp_path / ".env", "X=1\n").chmod(0)
    result = cli("config", "show")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: .env: cannot read")


def test_missing_env_file_flag(cli, tmp_path: Path):
    result = cli("--env-file", str(tmp_path / "nope.env"), "config", "show")
    assert result.exit_code == 2
    assert "--env-file" in result.stderr and "does not exist" in result.stderr


def test_config_show_masks_secrets_and_sources(cli, tmp_path: Path):
    _write(tmp_path / ".env", "POSTGRES_PASSWORD=sup3r-secret-pw\nNEO4J_PASSWORD=neo-secret-pw\n")
    _write(tmp_path / "config.ini", "[redis]\nuri = redis://:redis-secret-pw@localhost:6379/0\n")
    result = cli("--json", "config", "show", env={"WORKSPACE": "team-a"})
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in result.json()["settings"]}
    assert rows["POSTGRES_PASSWORD"] == {"name": "POSTGRES_PASSWORD", "value": "****", "source": ".env", "secret": True}
    assert rows["WORKSPACE"]["source"] == "env"
    assert rows["REDIS_URI"]["source"] == "config.ini"
    for secret in ("sup3r-secret-pw", "neo-secret-pw", "redis-secret-pw"):
        assert secret not in result.output
    human = cli("config", "show")
    assert "sup3r-secret-pw" not in human.output and "****" in human.output


def test_redact_masks_dsns_and_registered_secrets():
    load_settings(environ={"POSTGRES_PASSWORD": "pw-registered-1"}, cwd=Path.cwd())
    text = "postgresql://user:hunter2@db:5432/x failed; password=abc123; token pw-registered-1"
    masked = redact(text)
    assert "hunter2" not in masked and "abc123" not in masked and "pw-registered-1" not in masked


def test_config_show_names_the_env_file_a_value_came_from(cli, tmp_path: Path):
    _write(tmp_path / ".env", "POSTGRES_HOST=from-dotenv\n")
    _write(tmp_path / "prod.env", "POSTGRES_PORT=6543\n")
    before = cli("--env-file", "prod.env", "--json", "config", "show")
    after = cli("config", "show", "--env-file", "prod.env", "--json")  # the global options also follow the command
    assert before.exit_code == after.exit_code == 0, before.output + after.output
    for result in (before, after):
        rows = {row["name"]: row for row in result.json()["settings"]}
        assert rows["POSTGRES_PORT"]["source"] == "--env-file prod.env"
        assert rows["POSTGRES_HOST"]["source"] == "default"  # ./.env is not read when --env-file names another
    plain = {row["name"]: row for row in cli("--json", "config", "show").json()["settings"]}
    assert plain["POSTGRES_HOST"]["source"] == ".env"
    human = cli("config", "show", "--env-file", "prod.env")
    assert "--env-file prod.env" in human.stdout


def test_every_setting_is_declared_once_with_env_name_and_typed_default():
    """Each field of each group names its env variable and has a default of its own type, or is
    Optional (None = unset); load_settings with nothing set gives exactly those defaults."""
    names = [spec.env for spec in SPECS]
    assert len(names) == len(set(names))
    defaults = load_settings(environ={}, cwd=Path("/nonexistent-dir-for-config-test"))
    for group, cls in GROUPS.items():
        hints = typing.get_type_hints(cls)
        for spec, f in zip([s for s in SPECS if s.group == group], fields(cls)):
            assert spec.attr == f.name and re.fullmatch(r"[A-Z][A-Z0-9_]+", spec.env), spec
            kinds = typing.get_args(hints[f.name]) or (hints[f.name],)
            kinds = tuple(typing.get_origin(k) or k for k in kinds)
            if spec.default is None:
                assert type(None) in kinds, f"{spec.env} defaults to None but {f.name} is not Optional"
            else:
                assert isinstance(spec.default, kinds), f"{spec.env}: default {spec.default!r} is not {kinds}"
            assert getattr(getattr(defaults, group), f.name) == spec.default == f.default
            assert defaults.source(spec.env) == "default"


def test_typed_groups_carry_the_parsed_values(tmp_path: Path):
    env = {"POSTGRES_PORT": " 6543 ", "NEO4J_KEEP_ALIVE": "off", "POSTGRES_SSL_MODE": "REQUIRE",
           "RAGSTORE_COMMAND_TIMEOUT": "2.5", "REDIS_WORKSPACE": " team-b ", "WORKSPACE": "team-a"}
    settings = load_settings(environ=env, cwd=tmp_path)
    assert settings.postgres.port == 6543 and settings.neo4j.keep_alive is False
    assert settings.postgres.ssl_mode == "require" and settings.ragstore.command_timeout == 2.5
    assert settings.redis.workspace == "team-b" and isinstance(settings.redis.workspace, Workspace)
    assert isinstance(settings.lightrag.workspace, Workspace) and settings.neo4j.workspace is None
    flagged = settings.with_overrides({"POSTGRES_PORT": 7000})
    assert (flagged.postgres.port, flagged.source("POSTGRES_PORT"), settings.postgres.port) == (7000, "flag", 6543)


def test_secrets_stay_out_of_the_groups_repr(tmp_path: Path):
    settings = load_settings(environ={"POSTGRES_PASSWORD": "pw-in-repr-1", "NEO4J_PASSWORD": "pw-in-repr-2"},
                             cwd=tmp_path)
    assert settings.postgres.password == "pw-in-repr-1"
    shown = repr(settings.postgres) + repr(settings.neo4j) + repr(settings)
    assert "pw-in-repr" not in shown


BAD_VALUES = [  # one per parser: variable, value, what the message says
    ("POSTGRES_PORT", "abc", "expected an integer, got 'abc'"),
    ("POSTGRES_HNSW_M", "1", "1 is out of range [2, 100]"),
    ("RAGSTORE_COMMAND_TIMEOUT", "soon", "expected a number, got 'soon'"),
    ("NEO4J_KEEP_ALIVE", "maybe", "expected true or false, got 'maybe'"),
    ("POSTGRES_SSL_MODE", "sometimes", "unknown value 'sometimes'"),
    ("POSTGRES_SSL_ROOT_CERT", "/nonexistent/root.crt", "does not exist"),
    ("POSTGRES_SERVER_SETTINGS", "jit", "expected k=v&k2=v2"),
    ("WORKSPACE", "a/b", "workspace name 'a/b' contains characters that are not allowed"),
    ("REDIS_WORKSPACE", "x*", "workspace name 'x*' contains characters that are not allowed"),
]


@pytest.mark.parametrize("source", ["env", ".env", "--env-file", "config.ini"])
@pytest.mark.parametrize("variable, value, problem", BAD_VALUES)
def test_bad_value_of_each_type_names_variable_and_source(tmp_path: Path, source, variable, value, problem):
    spec = next(s for s in SPECS if s.env == variable)
    kwargs: dict = {"environ": {}, "cwd": tmp_path}
    if source == "env":
        kwargs["environ"] = {variable: value}
        shown = "env"
    elif source == ".env":
        _write(tmp_path / ".env", f"{variable}={value}\n")
        shown = ".env"
    elif source == "--env-file":
        kwargs["env_file"] = _write(tmp_path / "prod.env", f"{variable}={value}\n")
        shown = f"--env-file {kwargs['env_file']}"
    else:
        if spec.ini is None:
            pytest.skip(f"{variable} has no config.ini key")
        _write(tmp_path / "config.ini", f"[{spec.ini[0]}]\n{spec.ini[1]} = {value}\n")
        shown = "config.ini"
    with pytest.raises(ConfigError) as info:
        load_settings(**kwargs)
    message = str(info.value)
    assert message.startswith(f"{variable}: ") and message.endswith(f" (from {shown})"), message
    assert problem in message and "\n" not in message


#: `settings[...]`, or any read (not an assignment) subscripted by a declared setting's env name.
STRING_KEY_READ = re.compile(r"\bsettings\[|\[([\"'])(%s)\1\](?!\s*=(?!=))" % "|".join(spec.env for spec in SPECS))


def _string_key_reads(root: Path) -> list[str]:
    return [f"{path.relative_to(root.parent)}:{number}: {line.strip()}"
            for path in sorted(root.rglob("*.py"))
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if STRING_KEY_READ.search(line)]


def test_no_setting_is_read_by_string_key(tmp_path: Path):
    """Settings are read through the typed groups (settings.postgres.port), never settings["X"]."""
    assert not hasattr(Settings, "__getitem__")
    assert _string_key_reads(PACKAGE) == []
    planted = tmp_path / "ragstore_cli"
    planted.mkdir()
    _write(planted / "x.py", 'port = self.settings["POSTGRES_PORT"]\nwait = resolved[\'RAGSTORE_LOCK_TIMEOUT\'] or 1\n'
                             'env["WORKSPACE"] = name\nsame = env["WORKSPACE"] == name\n')
    assert _string_key_reads(planted) == ['ragstore_cli/x.py:1: port = self.settings["POSTGRES_PORT"]',
                                          "ragstore_cli/x.py:2: wait = resolved['RAGSTORE_LOCK_TIMEOUT'] or 1",
                                          'ragstore_cli/x.py:4: same = env["WORKSPACE"] == name']
