#!/usr/bin/env bash
# Real-browser test of Rampart's server-rendered pages.
#
# Works from a fresh clone: installs Debian's Chromium if it is missing (there
# is no browser download here, so never `npx playwright install`), installs
# the pinned playwright-core with `npm ci`, builds rampart, runs `node --test`
# and always stops the server it started. Exits non-zero on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium (Debian package)"
  apt_install chromium
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing node and npm (Debian packages)"
  apt_install nodejs npm
fi
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
  export PATH="$PATH:/usr/local/go/bin"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/rampart-e2e-browser.XXXXXX")"
cleanup() {
  # The test stops the server itself; this covers a crash or a Ctrl-C.
  if [ -s "$work/server.pid" ]; then
    pid="$(cat "$work/server.pid")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

echo "building rampart"
(cd "$repo" && go build -o "$work/rampart" ./cmd/rampart)

status=0
(cd "$here" && E2E_RAMPART_BIN="$work/rampart" E2E_WORK_DIR="$work" node --test pages.test.mjs) || status=$?
if [ "$status" -ne 0 ] && [ -f "$work/server.log" ]; then
  echo "--- last lines of the rampart log ---"
  tail -n 40 "$work/server.log"
fi
exit "$status"
