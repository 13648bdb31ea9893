#!/usr/bin/env bash
# Runs the server on the embedded default (SQLite file in ./data, in-process bus).
# Extra arguments go to `crisisroom serve` (see README's configuration table).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f package-lock.json ] && [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
if npm run 2>/dev/null | grep -q '^  build$'; then npm run --silent build; fi
exec go run ./cmd/crisisroom serve "$@"
