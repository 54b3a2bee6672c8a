#!/usr/bin/env bash
# Plain-shell CI step: exit 0 when every configured backend passes, 1 otherwise, 2 on bad settings.
# Reads LightRAG's variables from the environment or from the file given as $1 (a LightRAG .env).
# Needs ragstore on PATH: `pip install <ragstore checkout>` or a wheel built from one (it is not on PyPI).
set -euo pipefail
args=()
if [ "${1:-}" != "" ]; then args+=(--env-file "$1"); fi
status=0
ragstore "${args[@]}" --json check-connections --timeout "${RAGSTORE_CHECK_TIMEOUT:-10}" > storage-health.json || status=$?
[ "$status" -eq 2 ] && { cat storage-health.json; exit 2; }
python3 -c 'import json,sys; [print(("ok  " if r["ok"] else "FAIL"), r["backend"], r["error"] or "") for r in json.load(open("storage-health.json"))]'
exit $status
