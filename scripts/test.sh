#!/usr/bin/env bash
# The whole test suite, as CI runs it. On a fresh Debian machine, as root, it
# installs what the tests need (Chromium, Redis, PostgreSQL, Node.js) with apt.
# A missing tool is an error, never a skipped test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing: ${need[*]} (run as root to install them with apt)" >&2; exit 1
  fi
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v go >/dev/null 2>&1 || { echo "Go 1.26 or newer is required (https://go.dev/dl)" >&2; exit 1; }
for t in chromium redis-server npm; do
  command -v "$t" >/dev/null 2>&1 || { echo "required tool $t is still missing" >&2; exit 1; }
done

# Front end: dependencies pinned by the lock file, types checked.
npm ci --no-audit --no-fund --loglevel=error
npm run --silent check
if npm run 2>/dev/null | grep -q '^  build$'; then npm run --silent build; fi

test -z "$(gofmt -l $(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $(git ls-files '*.go'); exit 1; }
go vet ./...
export CRISISROOM_ARTIFACTS="${CRISISROOM_ARTIFACTS:-$PWD/artifacts}"
mkdir -p "$CRISISROOM_ARTIFACTS"
# Everything but the browser and process tests under the race detector
# (the SFU and the rooms run there under -race too, with pion peers).
go test -race -count=1 -timeout 25m $(go list ./... | grep -v '/e2e')
# The browser and process tests assert real-time figures (no tile frozen
# over a second across a mesh/SFU switch): they run without the race
# detector's 5-10x slowdown, one package at a time so that seven Chromium
# pages are not starved by another package's tests on two cores.
go test -count=1 -p 1 -timeout 25m ./e2e/...
