#!/usr/bin/env bash
# Makes sure the services and tools the tests use are there: PostgreSQL and
# Redis (installed from Debian's packages when missing, started when down)
# and SoftHSM2 (the PKCS#11 token for the HSM root-key tests). Under CI=true
# an unreachable service is a hard failure.
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

redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }
if ! redis_up; then
  if ! command -v redis-server >/dev/null 2>&1; then
    say "Redis not installed; installing from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  fi
  say "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null || true
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
fi
if redis_up; then
  say "Redis is up at 127.0.0.1:6379"
else
  echo "ERROR: Redis is not reachable at 127.0.0.1:6379" >&2
  [ "${CI:-}" = "true" ] && exit 1
fi

# SoftHSM2 is the PKCS#11 token the vault's HSM root-key tests run against.
if ! command -v softhsm2-util >/dev/null 2>&1; then
  say "SoftHSM2 not installed; installing from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update -qq && apt-get install -y -qq softhsm2 >/dev/null) || { echo "ERROR: cannot install softhsm2" >&2; [ "${CI:-}" = "true" ] && exit 1; }
fi
exit 0
