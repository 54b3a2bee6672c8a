"""Alembic environment for `alembic upgrade head` from the repository root.

The revisions live in ragstore_cli/schema/alembic/versions (so they ship inside the installed package);
the logic lives in ragstore_cli.schema.alembic_env. Settings come from ragstore's usual sources.
"""

from ragstore_cli.schema.alembic_env import run

run()
