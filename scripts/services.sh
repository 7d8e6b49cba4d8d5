#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer on loopback; starts or installs them when absent.
# A missing service is a failure, never a silent skip.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  if ! have apt-get; then echo "cannot install $*: no apt-get" >&2; return 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }
pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }

if ! redis_up; then
  have redis-server || apt_install redis-server
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 50); do redis_up && break; sleep 0.1; done
fi
redis_up || { echo "Redis is not reachable on 127.0.0.1:6379" >&2; exit 1; }
echo "redis: up"

if ! pg_up; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql
  fi
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  for _ in $(seq 100); do pg_up && break; sleep 0.1; done
fi
pg_up || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
# Trust auth on loopback is this machine's default; make sure the test database exists.
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 ||
  psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null
echo "postgres: up"

# The Kafka tests start their own brokers (Tansu, Kafka-compatible) on free ports: in memory,
# or on a SQLite file for the one that is restarted mid-stream. Built once per machine (it
# takes minutes); rebuilt only when the installed one lacks a storage engine the tests use.
export PATH="$HOME/.cargo/bin:$PATH"
tansu_features() {
  python3 - <<'PY' 2>/dev/null
import json, os
d = json.load(open(os.path.expanduser("~/.cargo/.crates2.json")))
print(" ".join(f for k, v in d["installs"].items() if k.startswith("tansu ") for f in v["features"]))
PY
}
if ! have tansu || ! tansu_features | grep -qw libsql || ! tansu_features | grep -qw dynostore; then
  echo "tansu: installing (once per machine, several minutes)"
  cargo install tansu --locked --features dynostore,libsql --quiet
fi
have tansu || { echo "tansu (the test Kafka broker) is not installed" >&2; exit 1; }
echo "tansu: $(command -v tansu)"

# `promtool check metrics` validates /metrics in the tests (tests/ops.rs). It ships in
# Debian's `prometheus` package: only that binary is taken from it, into .tools/bin (the
# server is not installed). Nothing is fetched when it is already there.
tools="$(cd "$(dirname "$0")/.." && pwd)/.tools"
if [ ! -x "$tools/bin/promtool" ]; then
  echo "promtool: taking it from Debian's prometheus package"
  deb=$(mktemp -d)
  (cd "$deb" && { apt-get download prometheus >/dev/null 2>&1 ||
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && apt-get download prometheus >/dev/null; }; })
  dpkg-deb -x "$deb"/prometheus_*.deb "$deb/x"
  mkdir -p "$tools/bin"
  install -m 0755 "$deb/x/usr/bin/promtool" "$tools/bin/promtool"
  rm -rf "$deb"
fi
"$tools/bin/promtool" --version >/dev/null 2>&1 || { echo "promtool does not run from $tools/bin" >&2; exit 1; }
echo "promtool: $("$tools/bin/promtool" --version 2>&1 | head -1)"

# An outside Kafka client for the tests, so Kairos is not only talking to itself.
if ! python3 -c "import confluent_kafka" 2>/dev/null; then
  python3 -m pip install --quiet confluent-kafka
fi
python3 -c "import confluent_kafka" || { echo "python confluent-kafka is not installed" >&2; exit 1; }
echo "confluent-kafka: $(python3 -c 'import confluent_kafka; print(confluent_kafka.version()[0])')"

# The SMPP tests run an SMSC written on the npm `smpp` package (tests/peers, pinned by its
# package-lock.json): Node.js and npm are required, never skipped.
if ! have node || ! have npm; then
  apt_install nodejs npm || true
fi
have node || { echo "node (for the test SMSC in tests/peers) is not installed" >&2; exit 1; }
have npm || { echo "npm (for the test SMSC in tests/peers) is not installed" >&2; exit 1; }
peers="$(cd "$(dirname "$0")/.." && pwd)/tests/peers"
if [ ! -d "$peers/node_modules/smpp" ]; then
  (cd "$peers" && npm ci --no-audit --no-fund --loglevel=error)
fi
[ -d "$peers/node_modules/smpp" ] || { echo "tests/peers: npm ci did not install smpp" >&2; exit 1; }
echo "test SMSC: node $(node --version), smpp $(cd "$peers" && node -p 'require("smpp/package.json").version')"
# The browser tests (tests/browser.rs) drive the portal widget and the agent desktop in
# Debian's Chromium through playwright-core, pinned in tests/browser/package-lock.json.
if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium
fi
[ -x /usr/bin/chromium ] || { echo "Chromium is not installed at /usr/bin/chromium" >&2; exit 1; }
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
if ! have node || ! have npm; then
  apt_install nodejs npm
fi
have node || { echo "Node.js is not installed" >&2; exit 1; }
if [ ! -d "$(dirname "$0")/../tests/browser/node_modules/playwright-core" ]; then
  (cd "$(dirname "$0")/../tests/browser" && npm ci --no-audit --no-fund --silent)
fi
[ -d "$(dirname "$0")/../tests/browser/node_modules/playwright-core" ] ||
  { echo "playwright-core is not installed in tests/browser" >&2; exit 1; }
echo "node: $(node --version), playwright-core: installed"
