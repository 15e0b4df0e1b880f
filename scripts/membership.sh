#!/usr/bin/env bash
# Group-membership figures for the axum example server, over HTTP, for each store.
#
# For every store in STORES (memory, sqlite: a file in a temporary directory, postgres: a
# throw-away cluster started here as the `postgres` user), starts examples/axum_server
# (release build) on 127.0.0.1 with USERS seeded users and runs scripts/membership.py:
#   - builds group L with BIG members (PATCH add, CHUNK ids per request) and group S with SMALL;
#   - REPEAT Entra-style one-member adds on S and on L: p50/p90 latency, response size, L/S;
#   - THREADS x PER_THREAD concurrent one-member adds (no If-Match) on a fresh group;
#   - one PATCH adding UNKNOWN ids that do not exist, to S (median of 5).
# Then prints a Markdown table and writes it into BENCHMARKS.md between the membership.sh
# markers (appended when they are missing; the rest of the file is left alone); WRITE=0
# only prints. A setup failure exits non-zero; a missed target is only reported.
#
# Only 127.0.0.1 is ever contacted. Knobs: STORES ("memory sqlite postgres"), USERS (100000),
# BIG (100000), SMALL (100), REPEAT (50), CHUNK (1000), THREADS (16), PER_THREAD (20),
# UNKNOWN (5000), STARTUP_TIMEOUT (3600 s, seeding included), WRITE (1), BENCHMARKS
# (BENCHMARKS.md). Installs Debian's postgresql when no initdb is found.
# Quick run: USERS=2000 BIG=2000 REPEAT=10 scripts/membership.sh
set -euo pipefail
cd "$(dirname "$0")/.."

STORES=${STORES:-memory sqlite postgres}
export USERS=${USERS:-100000} BIG=${BIG:-100000} SMALL=${SMALL:-100} REPEAT=${REPEAT:-50}
export CHUNK=${CHUNK:-1000} THREADS=${THREADS:-16} PER_THREAD=${PER_THREAD:-20}
export UNKNOWN=${UNKNOWN:-5000}
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-3600}
WRITE=${WRITE:-1}
BENCHMARKS=${BENCHMARKS:-BENCHMARKS.md}
# A fixed token in the shape scimkit issues, registered with --token (test-only secret).
TOKEN=scimkit_membershipmembershipmembershipmembership123
TENANT=default
for s in $STORES; do
    case $s in memory | sqlite | postgres) ;; *) echo "STORES: unknown store $s" >&2; exit 1 ;; esac
done

echo "== building the axum example (release, sqlite and postgres)"
cargo build --release --example axum_server --features sqlite,postgres
BIN="${CARGO_TARGET_DIR:-target}/release/examples/axum_server"

WORK=$(mktemp -d)
SERVER_PID=""
PG_DIR=""
PG_CTL=""
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
cleanup() {
    stop_server
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
    # /usr/local/bin/initdb may be a link: use the real directory, where pg_ctl also lives.
    local bin port
    bin=$(dirname "$(readlink -f "$initdb")")
    PG_CTL="$bin/pg_ctl"
    PG_DIR=$(mktemp -d /tmp/membership-pg.XXXXXX)
    [ "$(id -u)" -eq 0 ] && chown postgres: "$PG_DIR"
    port=$(free_port)
    echo "== starting PostgreSQL ($("$bin/postgres" --version)) on 127.0.0.1:$port"
    as_pg "$bin/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
        >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log" >&2; exit 1; }
    as_pg "$PG_CTL" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        >/dev/null || { cat "$PG_DIR/log" >&2; exit 1; }
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres scimkit_membership
    PG_URL="postgres://postgres@127.0.0.1:$port/scimkit_membership"
}

# start_server STORE_ARG: starts the server with USERS seeded users; sets BASE and SEED_S.
start_server() {
    local started=$SECONDS
    RUST_LOG=warn "$BIN" --store "$1" --listen 127.0.0.1:0 --tenant "$TENANT" \
        --token "$TOKEN" --seed-users "$USERS" >"$WORK/stdout" 2>"$WORK/stderr" &
    SERVER_PID=$!
    BASE=""
    local t0 deadline
    t0=$(date +%s.%N)
    deadline=$((SECONDS + STARTUP_TIMEOUT))
    while [ $SECONDS -lt $deadline ]; do
        BASE=$(sed -n 's/^SCIM base URL: //p' "$WORK/stdout")
        [ -n "$BASE" ] && break
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            cat "$WORK/stderr" >&2
            echo "the server exited" >&2
            exit 1
        fi
        sleep 0.2
    done
    [ -n "$BASE" ] || { echo "the server printed no base URL in $STARTUP_TIMEOUT s" >&2; exit 1; }
    SEED_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
    echo "   up after ${SEED_S} s ($((SECONDS - started)) s) at $BASE"
}

RESULTS=()
for store in $STORES; do
    case $store in
        memory) arg=memory ;;
        sqlite) arg="sqlite:$WORK/membership.db" ;;
        postgres)
            [ -n "$PG_DIR" ] || start_postgres
            arg="postgres:$PG_URL"
            ;;
    esac
    echo "== $store: starting the server with $USERS users"
    start_server "$arg"
    SETTLE_CMD=""
    if [ "$store" = postgres ]; then
        # ANALYZE after the bulk load, as autovacuum would within a minute or so.
        SETTLE_CMD="psql -q -d '$PG_URL' -c 'ANALYZE'"
    fi
    SETTLE_CMD="$SETTLE_CMD" python3 scripts/membership.py measure "$BASE" "$TOKEN" "$store" "$SEED_S" "$WORK/$store.json" \
        || { tail -20 "$WORK/stderr" >&2; echo "$store: setup failed" >&2; exit 1; }
    stop_server
    RESULTS+=("$WORK/$store.json")
done

CPU=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
COMMIT="commit $(git rev-parse --short HEAD 2>/dev/null || true)"
if [ "$COMMIT" = "commit " ]; then
    COMMIT="an unknown commit"
elif ! git diff --quiet HEAD -- src 2>/dev/null; then
    COMMIT="$COMMIT with src/ modified"
fi
SECTION="$WORK/section.md"
cat >"$SECTION" <<MD
<!-- membership.sh:begin -->
## Group membership at scale: the axum example server (scripts/membership.sh)

\`scripts/membership.sh\` on $(date -u +%Y-%m-%d) at $COMMIT, $(nproc) cores ($CPU),
$(rustc --version), release build, \`RUST_LOG=warn\`; one Python client (stdlib \`http.client\`,
keep-alive) on 127.0.0.1, sharing the machine with the server (and with other work). Each
store holds $USERS seeded users; L gets the first $BIG of them, S the first $SMALL. The
one-member adds are Entra-style \`{"op":"Add","path":"members","value":[{"value":id}]}\`
of $REPEAT spare users (not yet members), interleaved between S and L; the concurrent adds
are $THREADS threads × $PER_THREAD PATCHes (one member each, no If-Match, one connection per
thread) on a fresh group. SQLite is a file in a temporary directory; PostgreSQL is a
throw-away local cluster (\`fsync=off\`), \`ANALYZE\`d after the bulk load (what autovacuum does within about a minute; measured before it, by-id look-ups scan with stale statistics).

$(python3 scripts/membership.py table "${RESULTS[@]}")
<!-- membership.sh:end -->
MD

if [ "$WRITE" != 0 ]; then
    if [ -f "$BENCHMARKS" ] && grep -q '<!-- membership.sh:begin -->' "$BENCHMARKS"; then
        awk -v section="$SECTION" '
            /<!-- membership.sh:begin -->/ { while ((getline line < section) > 0) print line; skip = 1; next }
            /<!-- membership.sh:end -->/ { skip = 0; next }
            !skip { print }
        ' "$BENCHMARKS" >"$WORK/bench.md"
        cp "$WORK/bench.md" "$BENCHMARKS"
    elif [ -f "$BENCHMARKS" ]; then
        { echo; cat "$SECTION"; } >>"$BENCHMARKS"
    else
        { echo "# Benchmarks"; echo; cat "$SECTION"; } >"$BENCHMARKS"
    fi
fi

echo
cat "$SECTION"
