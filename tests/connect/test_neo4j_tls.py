"""TLS to a real Neo4j: bolt+s, bolt+ssc, neo4j+s and neo4j+ssc against a server with the test CA's
`localhost` certificate, and every refusal (unknown CA, wrong host name, no TLS) in one clear line."""

from __future__ import annotations

import pytest

from ragstore_cli.backends.neo4j import create
from ragstore_cli.config import load_settings
from tests.backends.neo4j.graphdata import node


def check(cli, server, uri: str, ca=None, timeout: str = "15"):
    env = {**server.env(), "NEO4J_URI": uri}
    if ca is not None:
        env["SSL_CERT_FILE"] = str(ca)  # how the neo4j driver (and so LightRAG) trusts a private CA
    result = cli("--json", "check-connections", "--backend", "neo4j", "--timeout", timeout, env=env)
    return result, result.json()[0]


@pytest.mark.parametrize("scheme, needs_ca", [("bolt+s", True), ("neo4j+s", True), ("bolt+ssc", False),
                                              ("neo4j+ssc", False)])
def test_encrypted_schemes_connect_and_say_so(cli, neo4j_tls_server, test_ca, monkeypatch, scheme, needs_ca):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    result, graph = check(cli, neo4j_tls_server, f"{scheme}://localhost:{neo4j_tls_server.port}",
                          test_ca.ca_cert if needs_ca else None)
    assert result.exit_code == 0, result.output
    assert graph["details"]["tls"] is True and graph["details"]["edition"] == "community"


def test_unknown_ca_is_refused_in_one_line(cli, neo4j_tls_server, test_ca):
    result, graph = check(cli, neo4j_tls_server, f"bolt+s://localhost:{neo4j_tls_server.port}", test_ca.other_ca_cert)
    assert result.exit_code == 1 and graph["ok"] is False
    assert "certificate" in graph["error"] and "not trusted" in graph["error"] and "SSL_CERT_FILE" in graph["error"]
    assert "\n" not in graph["error"]


def test_a_host_name_the_certificate_does_not_name_is_refused(cli, neo4j_tls_server, test_ca):
    # the certificate names localhost only
    result, graph = check(cli, neo4j_tls_server, f"bolt+s://127.0.0.1:{neo4j_tls_server.port}", test_ca.ca_cert)
    assert result.exit_code == 1
    assert "is not valid for host 127.0.0.1 — check NEO4J_URI" in graph["error"]
    # through neo4j+s:// the reason hides in the routing error's exception group: found there too
    routed, graph = check(cli, neo4j_tls_server, f"neo4j+s://127.0.0.1:{neo4j_tls_server.port}", test_ca.ca_cert, "4")
    assert routed.exit_code == 1 and "is not valid for host 127.0.0.1" in graph["error"]
    assert len(routed.stderr.splitlines()) <= 1  # the driver's routing retries are not printed


def test_plain_bolt_to_a_tls_only_server_says_to_use_tls(cli, neo4j_tls_server):
    result, graph = check(cli, neo4j_tls_server, f"bolt://localhost:{neo4j_tls_server.port}")
    assert result.exit_code == 1 and "bolt+s://" in graph["error"]


async def test_the_graph_round_trips_over_tls(neo4j_tls_server, test_ca, monkeypatch, tmp_path):
    monkeypatch.setenv("SSL_CERT_FILE", str(test_ca.ca_cert))
    env = {**neo4j_tls_server.env(), "NEO4J_URI": f"neo4j+s://localhost:{neo4j_tls_server.port}"}
    backend = create(load_settings(environ=env, cwd=tmp_path), "tls_ws")
    await backend.open()
    try:
        writer = await backend.graph().writer()
        await writer.write([node("it's over TLS")])
        await writer.commit()
        assert [n.id async for batch in backend.graph().read_nodes() for n in batch] == ["it's over TLS"]
    finally:
        await backend.drop_workspace()
        await backend.close()
