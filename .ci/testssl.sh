#!/usr/bin/env bash
# TLS-4: scan Rampart's HTTPS listener with testssl.sh (Debian package) and
# fail on any finding of severity HIGH or CRITICAL, except the ones a
# self-signed development certificate causes by design (trust chain).
#
#   .ci/testssl.sh [--summary FILE]
#
# Starts `rampart serve --dev` on a free loopback port with a scratch data
# directory, scans it, prints a summary and writes it as JSON (default
# .ci/out/testssl-summary.json; copy it to <data_dir>/testssl-summary.json
# for the TLS-4 live check to show it).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

summary=".ci/out/testssl-summary.json"
if [ "${1:-}" = "--summary" ] && [ -n "${2:-}" ]; then summary="$2"; fi
mkdir -p "$(dirname "$summary")"

if ! command -v testssl >/dev/null 2>&1 && ! command -v testssl.sh >/dev/null 2>&1; then
  echo "installing testssl.sh (Debian package)"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq || true; DEBIAN_FRONTEND=noninteractive apt-get install -y testssl.sh >/dev/null
  else
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y testssl.sh >/dev/null
  fi
fi
TESTSSL=$(command -v testssl || command -v testssl.sh)

work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/rampart" ./cmd/rampart
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
"$work/rampart" serve --dev --data-dir "$work/data" --listen "127.0.0.1:$port" --admin-listen 127.0.0.1:0 \
  --public-url "https://localhost:$port" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then echo "rampart did not start:"; cat "$work/serve.log"; exit 1; fi
  sleep 0.2
done

echo "scanning 127.0.0.1:$port with $($TESTSSL --version 2>/dev/null | grep -m1 -o 'testssl.sh *[0-9.a-z+~-]*' || echo testssl.sh)"
set +e
"$TESTSSL" --quiet --warnings off --color 0 --fast --ip one --jsonfile "$work/result.json" "127.0.0.1:$port" >"$work/testssl.out" 2>&1
rc=$?
set -e
if [ ! -s "$work/result.json" ]; then
  echo "testssl.sh produced no JSON (exit $rc):"; tail -n 40 "$work/testssl.out"; exit 1
fi

# Findings caused by the self-signed development certificate itself; a
# real deployment has a CA-issued certificate and none of these.
python3 - "$work/result.json" "$summary" "127.0.0.1:$port" <<'PY'
import json, sys, datetime
path, out, target = sys.argv[1], sys.argv[2], sys.argv[3]
findings = json.load(open(path))
if isinstance(findings, dict):
    findings = findings.get("scanResult", findings.get("findings", []))
ignore_prefixes = ("cert_chain_of_trust", "cert_trust", "cert_caIssuers", "cert_ocspURL", "cert_crlDistributionPoints",
                   "cert_revocation", "OCSP_stapling", "cert_mustStapleExtension", "cert_certificatePolicies_EV",
                   "DNS_CAArecord", "cert_validityPeriod", "engine_problem", "scanProblem")
bad, ignored, counts = [], [], {}
for f in findings:
    sev = (f.get("severity") or "").upper()
    counts[sev] = counts.get(sev, 0) + 1
    if sev not in ("HIGH", "CRITICAL"):
        continue
    fid = f.get("id", "")
    if fid.startswith(ignore_prefixes):
        ignored.append(fid)
        continue
    bad.append(f)
print("severity counts:", ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
for f in findings:
    if f.get("id") in ("SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3", "cipherlist_NULL", "cipherlist_aNULL",
                       "cipherlist_EXPORT", "cipherlist_LOW", "cipherlist_3DES_IDEA", "cipherlist_OBSOLETED", "cipherlist_AVERAGE",
                       "cipherlist_STRONG", "FS", "HSTS", "heartbleed", "ROBOT", "BEAST", "LUCKY13", "POODLE_SSL", "SWEET32"):
        print(f"  {f['id']:<22} {f.get('severity',''):<8} {f.get('finding','')}")
if ignored:
    print("ignored (self-signed development certificate):", ", ".join(sorted(set(ignored))))
high = sum(1 for f in bad if f.get("severity", "").upper() == "HIGH")
crit = sum(1 for f in bad if f.get("severity", "").upper() == "CRITICAL")
summary = {"time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "target": target,
           "high": high, "critical": crit, "ignored": sorted(set(ignored)), "passed": not bad}
json.dump(summary, open(out, "w"), indent=2)
if bad:
    print("FAIL: HIGH/CRITICAL findings:")
    for f in bad:
        print(f"  {f.get('id')}: {f.get('severity')}: {f.get('finding')}")
    sys.exit(1)
print(f"PASS: no HIGH or CRITICAL finding (summary in {out})")
PY
