"""Alembic environment for ragstore's revisions (the logic lives in ragstore_cli.schema.alembic_env)."""

from ragstore_cli.schema.alembic_env import run

run()
