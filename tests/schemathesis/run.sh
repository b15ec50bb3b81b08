#!/usr/bin/env bash
# Fuzzes a running Gatehouse against docs/openapi.yaml with schemathesis (stateful links, no
# 5xx, every status, content type, body and required header as documented):
#
#   tests/schemathesis/run.sh <base-url> [admin-token]
#
# The admin token (an access token or API key of a user holding `admin`) opens the admin API to
# the run; without it /admin/… is only seen refusing. tests/e2e/openapi.test.mjs starts a
# suitable worker (tests/schemathesis/target.mjs) and calls this. schemathesis runs from the
# virtualenv scripts/setup.sh makes from requirements.txt; run.py says what the
# GATEHOUSE_FUZZ_* variables change (time budget, minimum case count, workers, seed, reports).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/../../scripts/env.sh"

REQ="$HERE/requirements.txt"
VENV="$GATEHOUSE_TOOLS/schemathesis-$(sha256sum "$REQ" | cut -c1-12)"
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$VENV/.gatehouse-installed" ]; then
  echo "run.sh: no schemathesis virtualenv at $VENV (from $REQ): run bash scripts/setup.sh" >&2
  exit 2
fi
exec "$VENV/bin/python" "$HERE/run.py" "$@"
