#!/usr/bin/env bash
# CI for the Node client: installs what the tests need on a fresh machine,
# builds the addon (required here, so that both backends are tested), checks
# the TypeScript declarations, builds the Go programs the tests run (the
# sidecar and the test writer), and runs every test with node --test.
# Exits non-zero on failure; the last lines are the runner's summary.
#
#   clients/node/ci.sh            # from anywhere
#   ZEROHOP_TORTURE_SECONDS=30 clients/node/ci.sh
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }
apt_install() {
  if command -v apt-get >/dev/null; then
    as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
  else
    echo "ci.sh: need $* (no apt-get here)" >&2; return 1
  fi
}

# Node 20+ with npm.
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if ! command -v npm >/dev/null || [ "$(node_major)" -lt 20 ]; then
  apt_install nodejs npm
fi
if [ "$(node_major)" -lt 20 ]; then
  echo "ci.sh: Node >= 20 is required, found $(node --version 2>/dev/null || echo none)" >&2
  exit 1
fi
# A C compiler, make and Python for node-gyp; strace and flock for two tests.
missing=()
for tool in cc make python3; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then apt_install build-essential python3; fi
command -v strace >/dev/null || apt_install strace || echo "ci.sh: no strace: the system-call test is skipped"
command -v flock >/dev/null || apt_install util-linux || true

export ZEROHOP_REQUIRE_ADDON="${ZEROHOP_REQUIRE_ADDON:-1}"
npm ci --no-audit --no-fund --loglevel=error   # runs scripts/build-addon.js
node -e 'const s = require("./lib").addonStatus(); console.log("zerohop addon:", s.available ? "built" : "NOT built: " + s.error)'
npx tsc -p test/tsconfig.json
echo "zerohop: index.d.ts type-checks"

# The Go programs the tests start (built once here, outside the tests' timeouts).
if command -v go >/dev/null; then
  export ZEROHOP_BUILD_DIR="${ZEROHOP_BUILD_DIR:-$(mktemp -d)}"
  (cd ../.. && go build -o "$ZEROHOP_BUILD_DIR/zerohop" ./cmd/zerohop \
            && go build -o "$ZEROHOP_BUILD_DIR/zh-node-writer" ./clients/node/test/writer)
  export ZEROHOP_BIN="$ZEROHOP_BUILD_DIR/zerohop"
else
  echo "ci.sh: go not installed: the sidecar, torture and writer tests are skipped" >&2
fi

node --test --test-concurrency=1 --test-timeout=240000 --test-reporter=spec test/*.test.js
