"""Settings: LightRAG's names, precedence flag > env > .env > config.ini > default, one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ragstore_cli.config import load_settings
from ragstore_cli.errors import ConfigError
from ragstore_cli.redact import redact


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_precedence_flag_env_dotenv_ini_default(tmp_path: Path):
    _write(tmp_path / "config.ini", "[postgres]\nhost = ini-host\nport = 1111\nuser = ini-user\ndatabase = ini-db\n")
    _write(tmp_path / ".env", "POSTGRES_HOST=env-file-host\nPOSTGRES_PORT=2222\n")
    environ = {"POSTGRES_HOST": "env-host"}
    settings = load_settings(flags={"POSTGRES_HOST": "flag-host"}, environ=environ, cwd=tmp_path)
    assert (settings["POSTGRES_HOST"], settings.source("POSTGRES_HOST")) == ("flag-host", "flag")
    settings = load_settings(environ=environ, cwd=tmp_path)
    assert (settings["POSTGRES_HOST"], settings.source("POSTGRES_HOST")) == ("env-host", "env")
    assert (settings["POSTGRES_PORT"], settings.source("POSTGRES_PORT")) == (2222, ".env")
    assert (settings["POSTGRES_USER"], settings.source("POSTGRES_USER")) == ("ini-user", "config.ini")
    assert (settings["POSTGRES_MAX_CONNECTIONS"], settings.source("POSTGRES_MAX_CONNECTIONS")) == (50, "default")


def test_explicit_env_file_replaces_dotenv(tmp_path: Path):
    _write(tmp_path / ".env", "WORKSPACE=from-dotenv\n")
    other = _write(tmp_path / "prod.env", "WORKSPACE=from-prod\n")
    assert load_settings(env_file=other, environ={}, cwd=tmp_path)["WORKSPACE"] == "from-prod"


def test_unix_socket_host_and_server_settings(tmp_path: Path):
    env = {"POSTGRES_HOST": "/var/run/postgresql", "POSTGRES_SERVER_SETTINGS": "jit=off&work_mem=64MB"}
    settings = load_settings(environ=env, cwd=tmp_path)
    assert settings["POSTGRES_HOST"] == "/var/run/postgresql"
    assert settings["POSTGRES_SERVER_SETTINGS"] == {"jit": "off", "work_mem": "64MB"}


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
