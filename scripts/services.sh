#!/usr/bin/env bash
# Makes sure the services the tests use are up: PostgreSQL (required) and
# Redis (started when installed; later work uses it). Installs PostgreSQL
# from Debian's packages when it is missing. Under CI=true an unreachable
# PostgreSQL is a hard failure.
set -uo pipefail

say() { printf '== %s\n' "$*"; }

pg_up() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h 127.0.0.1 -p 5432
  else
    (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
  fi
}

if ! pg_up; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    say "PostgreSQL not installed; installing from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
    # Trust auth on loopback, as the tests expect (a throwaway CI machine).
    for hba in /etc/postgresql/*/main/pg_hba.conf; do
      sed -i -E 's/^(host\s+all\s+all\s+127\.0\.0\.1\/32\s+)\S+/\1trust/; s/^(local\s+all\s+postgres\s+)\S+/\1trust/' "$hba"
    done
  fi
  say "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if pg_up; then
  say "PostgreSQL is up at 127.0.0.1:5432"
else
  echo "ERROR: PostgreSQL is not reachable at 127.0.0.1:5432" >&2
  [ "${CI:-}" = "true" ] && exit 1
fi

if command -v redis-server >/dev/null 2>&1; then
  if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
    say "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null || true
  fi
fi
exit 0
