"""Neo4j: what cannot be enforced, said plainly, and the Enterprise statements that could.

LightRAG isolates workspaces in Neo4j by node label only. Neo4j Community has no role-based or
label-based access control: every user may read and write every node. Enterprise has fine-grained
privileges on labels; `enterprise_cypher` prints the statements for one workspace. They are NOT
tested here (the suite runs Community and FalkorDB).
"""

from __future__ import annotations

from ragstore_cli.workspace import neo4j_label, quote_label

NOT_ENFORCED = ("Neo4j Community has no per-label access control: a Neo4j user can read and change every "
                "workspace's graph; use Enterprise (see --print-cypher, not tested here) or a graph backend "
                "ragstore can restrict")
UNTESTED = "// NOT TESTED by ragstore: Neo4j Enterprise fine-grained privileges for one LightRAG workspace."


def enterprise_cypher(role: str, workspace: str, database: str | None) -> list[str]:
    """Statements granting `role` the nodes labelled with the workspace and the relationships between them."""
    label = quote_label(neo4j_label(workspace))
    db = quote_label(database or "neo4j")
    user, group = quote_label(role), quote_label(f"ragstore_ws_{role}")
    graph = f"ON GRAPH {db}"
    return [
        UNTESTED,
        "// Relationships are visible only where both end nodes are, so DIRECTED below means the workspace's edges.",
        f"CREATE USER {user} IF NOT EXISTS SET PASSWORD $password CHANGE NOT REQUIRED;",
        f"CREATE ROLE {group} IF NOT EXISTS;",
        f"GRANT ACCESS ON DATABASE {db} TO {group};",
        f"GRANT MATCH {{*}} {graph} NODES {label} TO {group};",
        f"GRANT MATCH {{*}} {graph} RELATIONSHIPS DIRECTED TO {group};",
        f"GRANT CREATE {graph} NODES {label} TO {group};",
        f"GRANT CREATE {graph} RELATIONSHIPS DIRECTED TO {group};",
        f"GRANT DELETE {graph} NODES {label} TO {group};",
        f"GRANT DELETE {graph} RELATIONSHIPS DIRECTED TO {group};",
        f"GRANT SET LABEL {label} {graph} TO {group};",
        f"GRANT SET PROPERTY {{*}} {graph} NODES {label} TO {group};",
        f"GRANT SET PROPERTY {{*}} {graph} RELATIONSHIPS DIRECTED TO {group};",
        f"GRANT INDEX MANAGEMENT ON DATABASE {db} TO {group};  // LightRAG creates its indexes at start-up",
        f"GRANT NAME MANAGEMENT ON DATABASE {db} TO {group};",
        f"GRANT ROLE {group} TO {user};",
    ]
