#!/usr/bin/env bash
# The test command of the README: every package, with the race detector,
# against SQLite and the local PostgreSQL (127.0.0.1:5432; override with
# RAMPART_TEST_POSTGRES). Each test run creates and drops its own databases.
set -euo pipefail
cd "$(dirname "$0")/.."
export RAMPART_TEST_POSTGRES="${RAMPART_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
exec go test -race -count=1 -timeout 20m "$@" ./...
