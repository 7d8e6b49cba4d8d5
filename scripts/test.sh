#!/usr/bin/env bash
# The one test command (README, .ci/run). Starts the services the tests need when absent,
# then runs the layers: format, lints, unit + integration tests (SQLite, PostgreSQL, Redis,
# Kafka-compatible brokers, Python's confluent-kafka as an outside client, headless
# Chromium for the portal widget and the agent desktop),
# the rule pack's golden tests, and the API fuzzer against a live server.
set -euo pipefail
cd "$(dirname "$0")/.."

# A one-shot build gains nothing from incremental caches; they were a third of the disk it used.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
export KAIROS_TEST_PG_URL="${KAIROS_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
export KAIROS_TEST_REDIS_URL="${KAIROS_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
# The Kafka tests start `tansu` brokers; services.sh installs it here when absent.
export PATH="$HOME/.cargo/bin:$PATH"
# promtool (the /metrics test) is put in .tools/bin by services.sh.
export PATH="$PWD/.tools/bin:$PATH"

step() { printf '\n== %s ==\n' "$*"; }

step "services"
bash scripts/services.sh

step "format"
cargo fmt --all -- --check

step "lints"
cargo clippy --locked --all-targets -- -D warnings

step "unit and integration tests"
log=$(mktemp)
cargo test --locked 2>&1 | tee "$log"
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')
rm -f "$log"

step "rule pack"
cargo run --locked --quiet -- rules check rules/
cargo run --locked --quiet -- rules test rules/

step "API fuzzing (schemathesis, no server errors allowed)"
bash scripts/fuzz-api.sh

# One line for people and CI alike: the cargo test totals of this run.
echo
echo "tests: $passed passed, $failed failed"
