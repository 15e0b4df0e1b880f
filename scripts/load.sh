#!/usr/bin/env bash
# Load figures for the axum example server (issue 9, item 5).
#
# For every store in STORES (memory, sqlite: a file in a temporary directory, postgres: a
# throw-away cluster started here with initdb/pg_ctl on a free loopback port), starts
# examples/axum_server (release build, 10,000 seeded users, the same for every store) on
# 127.0.0.1 and measures with wrk, for DURATION each:
#   - GET /ping                                  a trivial axum handler: the ceiling
#   - GET /scim/v2/default/Users/{id}            one user by id
#   - GET /scim/v2/default/Users?filter=userName eq "..."
# then writes the requests/second and the ratios to the ceiling into BENCHMARKS.md (between
# the load.sh markers, leaving the rest of the file alone) and prints them.
#
# The SQL stores are reported as ratios to the memory store's rates (issue 16 targets: GET by
# id SQLite ≥ 0.4x, PostgreSQL ≥ 0.25x; userName eq filter SQLite ≥ 0.35x, PostgreSQL ≥ 0.2x).
#
# Only 127.0.0.1 is ever contacted. Knobs: STORES ("memory sqlite postgres"), DURATION (10s
# per run), ROUNDS (3), THREADS (2), CONNECTIONS (32), USERS (10000), FEATURES (the cargo
# features of the build, "sqlite,postgres"; add "testing" to share the release build of
# `cargo bench --features sqlite,postgres,testing`). Installs wrk (Debian package) when it
# is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
USERS=${USERS:-10000}
STORES=${STORES:-memory sqlite postgres}
FEATURES=${FEATURES:-sqlite,postgres}
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-600}
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
cargo build --release --example axum_server --features "$FEATURES"
BIN="${CARGO_TARGET_DIR:-target}/release/examples/axum_server"

WORK=$(mktemp -d)
SERVER_PIDS=""
PG_DIR=""
PG_CTL=""
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
stop_servers() {
    local pid
    for pid in $SERVER_PIDS; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    SERVER_PIDS=""
}
cleanup() {
    stop_servers
    if [ -n "$PG_DIR" ]; then
        as_pg "$PG_CTL" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_postgres: a throw-away cluster on 127.0.0.1 (trust auth, fsync off); sets PG_URL.
start_postgres() {
    local initdb
    initdb=$(command -v initdb || ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1 || true)
    if [ -z "$initdb" ]; then
        echo "== installing PostgreSQL (Debian's postgresql)"
        SUDO=""
        [ "$(id -u)" -ne 0 ] && SUDO=sudo
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
        initdb=$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)
    fi
    local bin port
    bin=$(dirname "$(readlink -f "$initdb")")
    PG_CTL="$bin/pg_ctl"
    PG_DIR=$(mktemp -d /tmp/load-pg.XXXXXX)
    [ "$(id -u)" -eq 0 ] && chown postgres: "$PG_DIR"
    port=$(free_port)
    echo "== starting PostgreSQL ($("$bin/postgres" --version)) on 127.0.0.1:$port"
    as_pg "$bin/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
        >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log" >&2; exit 1; }
    as_pg "$PG_CTL" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        >/dev/null || { cat "$PG_DIR/log" >&2; exit 1; }
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres scimkit_load
    PG_URL="postgres://postgres@127.0.0.1:$port/scimkit_load"
}

# start_server NAME STORE_ARG: the server with USERS seeded users; sets BASE, ORIGIN,
# USER_ID (and records them under NAME).
start_server() {
    local name=$1 pid
    RUST_LOG=warn "$BIN" --store "$2" --listen 127.0.0.1:0 --tenant "$TENANT" \
        --token "$TOKEN" --seed-users "$USERS" >"$WORK/$name.stdout" 2>"$WORK/$name.stderr" &
    pid=$!
    SERVER_PIDS="$SERVER_PIDS $pid"
    BASE=""
    local deadline=$((SECONDS + STARTUP_TIMEOUT))
    while [ $SECONDS -lt $deadline ]; do
        BASE=$(sed -n 's/^SCIM base URL: //p' "$WORK/$name.stdout")
        [ -n "$BASE" ] && break
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$WORK/$name.stderr" >&2
            echo "the server exited" >&2
            exit 1
        fi
        sleep 0.2
    done
    [ -n "$BASE" ] || { echo "the server printed no base URL" >&2; exit 1; }
    if [ "$name" = postgres ]; then
        # ANALYZE after the bulk load, as autovacuum would within a minute or so, and before
        # the first read: a server session decides per prepared statement between planning
        # each execution and a generic plan, and a decision made without statistics can stay.
        psql -q -d "$PG_URL" -c 'ANALYZE' >/dev/null
    fi
    ORIGIN=$(echo "$BASE" | sed -E 's#^(http://[^/]+).*#\1#')
    USER_ID=$(curl -sf -H "$AUTH" "$BASE$FILTER_PATH" | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4 || true)
    [ -n "$USER_ID" ] || { echo "$USER_NAME not found" >&2; exit 1; }
    local total
    total=$(curl -sf -H "$AUTH" "$BASE/Users?count=0" | grep -o '"totalResults":[0-9]*' | cut -d: -f2 || true)
    [ "$total" = "$USERS" ] || { echo "expected $USERS users, the server has $total" >&2; exit 1; }
    curl -sf -o /dev/null -H "$AUTH" "$BASE/Users/$USER_ID"
    BASES[$name]=$BASE
    ORIGINS[$name]=$ORIGIN
    USER_IDS[$name]=$USER_ID
}
declare -A BASES ORIGINS USER_IDS

AUTH="Authorization: Bearer $TOKEN"
# A user from the middle of the seeded ones (`user{i:05}@example.com`).
USER_NAME=$(printf 'user%05d' $((USERS / 2)))
FILTER_PATH="/Users?filter=userName%20eq%20%22${USER_NAME}%40example.com%22"

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
# The machine is shared, so the measurements are interleaved in ROUNDS rounds and each is
# reported as its median round (the p50/p99 latencies are from that round).
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
# Every store's server runs for the whole measurement and the rounds interleave the
# stores (memory, sqlite, postgres, memory, ...), so a change in the machine's other load
# during the run falls on all of them alike and the ratios stay comparable.
for store in $STORES; do
    case $store in
        memory) arg=memory ;;
        sqlite) arg="sqlite:$WORK/load.db" ;;
        postgres)
            [ -n "$PG_DIR" ] || start_postgres
            arg="postgres:$PG_URL"
            ;;
        *) echo "unknown store $store" >&2; exit 1 ;;
    esac
    echo "== $store: starting the server with $USERS users"
    start_server "$store" "$arg"
done
for ROUND in $(seq 1 "$ROUNDS"); do
    for store in $STORES; do
        echo "== round $ROUND/$ROUNDS, $store: trivial handler (ceiling), GET /Users/{id}, GET /Users?filter=userName eq"
        run "ceiling_$store" "${ORIGINS[$store]}/ping"
        run "by_id_$store" "${BASES[$store]}/Users/${USER_IDS[$store]}" -H "$AUTH"
        run "filter_$store" "${BASES[$store]}$FILTER_PATH" -H "$AUTH"
    done
done
stop_servers
rps() { sort -n "$WORK/$1.rps" | awk '{v[NR] = $1} END {printf "%.0f", v[int((NR + 1) / 2)]}'; }
p50() { awk '$1 == "50%" {print $2}' "$WORK/$1.$(median_round "$1").txt"; }
p99() { awk '$1 == "99%" {print $2}' "$WORK/$1.$(median_round "$1").txt"; }
all() { sort -n "$WORK/$1.rps" | awk '{printf "%s%.0f", (NR > 1 ? ", " : ""), $1}'; }
CEILING=$(rps ceiling_memory)
BY_ID=$(rps by_id_memory)
FILTER=$(rps filter_memory)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
# round_ratios A B: A's rate over B's in each round (the two were measured minutes apart at
# most), in round order.
round_ratios() { paste "$WORK/$1.rps" "$WORK/$2.rps" | awk '{printf "%.2f\n", $1 / $2}'; }
median() { sort -n | awk '{v[NR] = $1} END {printf "%.2f", v[int((NR + 1) / 2)]}'; }
listed() { awk '{printf "%s%s", (NR > 1 ? ", " : ""), $1}'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN {print (r >= t) ? "met" : "NOT met"}'; }
R_ID=$(ratio "$BY_ID" "$CEILING")
R_FILTER=$(ratio "$FILTER" "$CEILING")
CPU=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
RUSTC=$(rustc --version)

# The SQL stores, as ratios to the memory store's rates (same run, same data).
sql_section() {
    local store by_id filter r_id r_filter t_id t_filter rows=""
    for store in $STORES; do
        case $store in
            sqlite) t_id=0.4 t_filter=0.35 ;;
            postgres) t_id=0.25 t_filter=0.2 ;;
            *) continue ;;
        esac
        by_id=$(rps "by_id_$store")
        filter=$(rps "filter_$store")
        r_id=$(round_ratios "by_id_$store" by_id_memory | median)
        r_filter=$(round_ratios "filter_$store" filter_memory | median)
        rows="$rows| $store | $by_id ($(p50 "by_id_$store") p50) | $r_id (≥ $t_id: $(verdict "$r_id" "$t_id")); rounds: $(round_ratios "by_id_$store" by_id_memory | listed) | $filter ($(p50 "filter_$store") p50) | $r_filter (≥ $t_filter: $(verdict "$r_filter" "$t_filter")); rounds: $(round_ratios "filter_$store" filter_memory | listed) |
"
    done
    [ -n "$rows" ] || return 0
    printf '\n### The SQL stores, same run, same %s users\n\n' "$USERS"
    printf 'SQLite: a file in a temporary directory (default durability); PostgreSQL: a throw-away\n'
    printf 'cluster on loopback TCP (fsync off), ANALYZEd after the seeding. Ratios to the memory\n'
    printf 'store in the same round (measured minutes apart at most), median of the rounds; the\n'
    printf 'rates are medians of the rounds.\n\n'
    printf '| store | GET by id, req/s | ratio | userName eq filter, req/s | ratio |\n'
    printf '| --- | ---: | ---: | ---: | ---: |\n'
    printf '%s' "$rows"
}

SECTION="$WORK/section.md"
cat >"$SECTION" <<MD
<!-- load.sh:begin -->
## HTTP load: the axum example server (scripts/load.sh)

\`scripts/load.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores ($CPU), $RUSTC, release build,
memory store with $USERS users, \`RUST_LOG=warn\`; wrk \`-t$THREADS -c$CONNECTIONS -d$DURATION\` on
127.0.0.1, on the same machine as the server (wrk and the server share the cores, and the
machine was shared with other work). All stores' servers run throughout; median of $ROUNDS rounds, each
measuring every store in turn; all rounds of the memory store:
ceiling $(all ceiling_memory); by id $(all by_id_memory); filter $(all filter_memory) requests/s.

| request | requests/s | p50 | p99 | ratio to ceiling | target |
| --- | ---: | ---: | ---: | ---: | --- |
| \`GET /ping\` (trivial axum handler, the ceiling) | $CEILING | $(p50 ceiling_memory) | $(p99 ceiling_memory) | 1.00 | |
| \`GET /Users/{id}\` | $BY_ID | $(p50 by_id_memory) | $(p99 by_id_memory) | $R_ID | ≥ 0.5: $(verdict "$R_ID" 0.5) |
| \`GET /Users?filter=userName eq "…"\` | $FILTER | $(p50 filter_memory) | $(p99 filter_memory) | $R_FILTER | ≥ 0.4: $(verdict "$R_FILTER" 0.4) |

Every SCIM request is authenticated (bearer token hash lookup), the tenant is read, and the
answer is rendered as \`application/scim+json\` with \`meta\` and an ETag.
$(sql_section)
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
