#!/usr/bin/env bash
# Sends the acceptance scenario to a running `kairos serve` and prints the offers.
# Usage: KAIROS_KEY=<admin key> examples/ingest.sh [http://127.0.0.1:8080]
set -euo pipefail
base=${1:-http://127.0.0.1:8080}
: "${KAIROS_KEY:?set KAIROS_KEY to an API key (printed by kairos serve on first start)}"
curl -fsS -H "Authorization: Bearer $KAIROS_KEY" -H 'content-type: application/x-ndjson' \
  --data-binary @"$(dirname "$0")/scenario.ndjson" "$base/api/v1/events?wait=true"
echo
for m in 8613900000001 8613900000002 8613900000003; do
  curl -fsS -H "Authorization: Bearer $KAIROS_KEY" "$base/api/v1/recommendations?msisdn=$m" |
    python3 -c 'import json,sys; [print(r["msisdn"], r["offer_code"], r["status"], r["message"]) for r in json.load(sys.stdin)["items"]]'
done
