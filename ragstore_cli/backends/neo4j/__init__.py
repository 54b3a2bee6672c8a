"""The `neo4j` backend: LightRAG's graph over Bolt (Neo4j; FalkorDB's Bolt endpoint in tests)."""

from __future__ import annotations

from ragstore_cli.backends.neo4j.backend import ROLES, Neo4jBackend, Neo4jGraph
from ragstore_cli.config import Settings
from ragstore_cli.workspace import validate_workspace

__all__ = ["ROLES", "Neo4jBackend", "Neo4jGraph", "create"]


def create(settings: Settings, workspace: str) -> Neo4jBackend:
    """An unopened backend for `workspace` (NEO4J_WORKSPACE wins); `await open()` connects."""
    return Neo4jBackend(settings, validate_workspace(workspace))  # the package's edge; a Workspace passes as is
