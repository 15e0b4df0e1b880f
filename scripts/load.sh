#!/usr/bin/env bash
# Load figures for the axum example server (issue 9, item 5).
#
# Starts examples/axum_server (release build, memory store, 10,000 seeded users) on
# 127.0.0.1 and measures with wrk, for DURATION each:
#   - GET /ping                                  a trivial axum handler: the ceiling
#   - GET /scim/v2/default/Users/{id}            one user by id
#   - GET /scim/v2/default/Users?filter=userName eq "..."
# then writes the requests/second and the ratios to the ceiling into BENCHMARKS.md (between
# the load.sh markers, leaving the rest of the file alone) and prints them.
#
# Only 127.0.0.1 is ever contacted. Knobs: DURATION (10s per run), ROUNDS (3), THREADS (2),
# CONNECTIONS (32), USERS (10000). Installs wrk (Debian package) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
USERS=${USERS:-10000}
# A fixed token in the shape scimkit issues, registered with --token (test-only secret).
TOKEN=scimkit_loadtestloadtestloadtestloadtestloadtest123
TENANT=default

if ! command -v wrk >/dev/null 2>&1; then
    echo "== installing wrk"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq wrk >/dev/null
fi

echo "== building the axum example (release)"
cargo build --release --example axum_server
BIN="${CARGO_TARGET_DIR:-target}/release/examples/axum_server"

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== starting the server with $USERS users"
RUST_LOG=warn "$BIN" --store memory --listen 127.0.0.1:0 --tenant "$TENANT" \
    --token "$TOKEN" --seed-users "$USERS" >"$WORK/stdout" 2>"$WORK/stderr" &
SERVER_PID=$!
BASE=""
for _ in $(seq 1 600); do
    BASE=$(sed -n 's/^SCIM base URL: //p' "$WORK/stdout")
    [ -n "$BASE" ] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        cat "$WORK/stderr" >&2
        echo "the server exited" >&2
        exit 1
    fi
    sleep 0.2
done
[ -n "$BASE" ] || { echo "the server printed no base URL" >&2; exit 1; }
ORIGIN=$(echo "$BASE" | sed -E 's#^(http://[^/]+).*#\1#')
AUTH="Authorization: Bearer $TOKEN"

# A user from the middle of the seeded ones (`user{i:05}@example.com`).
USER_NAME=$(printf 'user%05d' $((USERS / 2)))
FILTER_PATH="/Users?filter=userName%20eq%20%22${USER_NAME}%40example.com%22"
USER_ID=$(curl -sf -H "$AUTH" "$BASE$FILTER_PATH" | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4 || true)
[ -n "$USER_ID" ] || { echo "$USER_NAME not found" >&2; exit 1; }
TOTAL=$(curl -sf -H "$AUTH" "$BASE/Users?count=0" | grep -o '"totalResults":[0-9]*' | cut -d: -f2 || true)
[ "$TOTAL" = "$USERS" ] || { echo "expected $USERS users, the server has $TOTAL" >&2; exit 1; }
curl -sf -o /dev/null -H "$AUTH" "$BASE/Users/$USER_ID"

# run NAME URL [wrk args]: one wrk run; fails on any non-2xx answer or socket error.
run() {
    local name=$1 url=$2 out
    shift 2
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url")
    if echo "$out" | grep -qE "Non-2xx|Socket errors"; then
        echo "$out" >&2
        echo "$name: failed requests" >&2
        exit 1
    fi
    echo "$out" >"$WORK/$name.$ROUND.txt"
    echo "$out" | awk '/^Requests\/sec:/ {print $2}' >>"$WORK/$name.rps"
}
# The machine is shared, so the three measurements are interleaved in ROUNDS rounds and
# each is reported as its median round (the p50/p99 latencies are from that round).
median_round() {
    local name=$1 med
    med=$(sort -n "$WORK/$name.rps" | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
    for r in $(seq 1 "$ROUNDS"); do
        if grep -q "^Requests/sec: *$med\$" "$WORK/$name.$r.txt"; then
            echo "$r"
            return
        fi
    done
}
for ROUND in $(seq 1 "$ROUNDS"); do
    echo "== round $ROUND/$ROUNDS: trivial handler (ceiling), GET /Users/{id}, GET /Users?filter=userName eq"
    run ceiling "$ORIGIN/ping"
    run by_id "$BASE/Users/$USER_ID" -H "$AUTH"
    run filter "$BASE$FILTER_PATH" -H "$AUTH"
done
rps() { sort -n "$WORK/$1.rps" | awk '{v[NR] = $1} END {printf "%.0f", v[int((NR + 1) / 2)]}'; }
p50() { awk '$1 == "50%" {print $2}' "$WORK/$1.$(median_round "$1").txt"; }
p99() { awk '$1 == "99%" {print $2}' "$WORK/$1.$(median_round "$1").txt"; }
all() { sort -n "$WORK/$1.rps" | awk '{printf "%s%.0f", (NR > 1 ? ", " : ""), $1}'; }
CEILING=$(rps ceiling)
BY_ID=$(rps by_id)
FILTER=$(rps filter)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN {print (r >= t) ? "met" : "NOT met"}'; }
R_ID=$(ratio "$BY_ID" "$CEILING")
R_FILTER=$(ratio "$FILTER" "$CEILING")
CPU=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
RUSTC=$(rustc --version)

SECTION="$WORK/section.md"
cat >"$SECTION" <<MD
<!-- load.sh:begin -->
## HTTP load: the axum example server (scripts/load.sh)

\`scripts/load.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores ($CPU), $RUSTC, release build,
memory store with $USERS users, \`RUST_LOG=warn\`; wrk \`-t$THREADS -c$CONNECTIONS -d$DURATION\` on
127.0.0.1, on the same machine as the server (wrk and the server share the cores, and the
machine was shared with other work). Median of $ROUNDS interleaved rounds; all rounds:
ceiling $(all ceiling); by id $(all by_id); filter $(all filter) requests/s.

| request | requests/s | p50 | p99 | ratio to ceiling | target |
| --- | ---: | ---: | ---: | ---: | --- |
| \`GET /ping\` (trivial axum handler, the ceiling) | $CEILING | $(p50 ceiling) | $(p99 ceiling) | 1.00 | |
| \`GET /Users/{id}\` | $BY_ID | $(p50 by_id) | $(p99 by_id) | $R_ID | ≥ 0.5: $(verdict "$R_ID" 0.5) |
| \`GET /Users?filter=userName eq "…"\` | $FILTER | $(p50 filter) | $(p99 filter) | $R_FILTER | ≥ 0.4: $(verdict "$R_FILTER" 0.4) |

Every SCIM request is authenticated (bearer token hash lookup), the tenant is read, and the
answer is rendered as \`application/scim+json\` with \`meta\` and an ETag.
<!-- load.sh:end -->
MD

if [ -f BENCHMARKS.md ] && grep -q '<!-- load.sh:begin -->' BENCHMARKS.md; then
    awk -v section="$SECTION" '
        /<!-- load.sh:begin -->/ { while ((getline line < section) > 0) print line; skip = 1; next }
        /<!-- load.sh:end -->/ { skip = 0; next }
        !skip { print }
    ' BENCHMARKS.md >"$WORK/bench.md"
    cp "$WORK/bench.md" BENCHMARKS.md
elif [ -f BENCHMARKS.md ]; then
    { echo; cat "$SECTION"; } >>BENCHMARKS.md
else
    { echo "# Benchmarks"; echo; cat "$SECTION"; } >BENCHMARKS.md
fi

echo
sed -n '/<!-- load.sh:begin -->/,/<!-- load.sh:end -->/p' BENCHMARKS.md
