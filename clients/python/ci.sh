#!/usr/bin/env bash
# Installs the Python client and its test dependencies (pytest, requests,
# httpx, xxhash) into a virtualenv and runs its tests: the golden vectors,
# bad input, the real sidecar (built with `go build ./cmd/zerohop`) and the
# cross-language torture test against the Go writer. Works on a fresh
# machine (installs python3-venv through apt when the venv module is
# missing). Exits non-zero on failure; pytest prints the summary line.
#
#   clients/python/ci.sh            # ZEROHOP_TORTURE_SECONDS=10 by default
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-python3}
VENV=${ZEROHOP_PY_VENV:-${TMPDIR:-/tmp}/zerohop-python-ci-venv}

if ! command -v "$PY" >/dev/null 2>&1; then
	apt-get update -qq && apt-get install -y -qq python3 python3-venv python3-pip >/dev/null
	PY=python3
fi
if [ ! -x "$VENV/bin/python" ]; then
	if ! "$PY" -m venv "$VENV" >/dev/null 2>&1; then
		rm -rf "$VENV"
		apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
		"$PY" -m venv "$VENV"
	fi
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
if ! command -v go >/dev/null 2>&1; then
	echo "ci.sh: go is not on PATH: the sidecar and torture tests need it" >&2
	exit 1
fi
# mypy is optional: type-check when it can be installed.
if "$VENV/bin/python" -m pip install -q --disable-pip-version-check mypy >/dev/null 2>&1; then
	"$VENV/bin/python" -m mypy --strict src/zerohop
fi
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests
