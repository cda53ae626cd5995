#!/usr/bin/env bash
# The body of `make bench`: Coffre (local cluster) against Swift 2.30 (the peer), side by side
# on this machine, in one run; writes the Markdown table to bench/results/.
#
#   bench/run_vs_swift.sh [extra bench.compare options, e.g. --workloads put-small --rounds 5]
#
# Starts a Coffre cluster from conf/local.toml in a fresh temporary data root (on free ports
# when 9000/9101.. are taken), starts the Swift peer with ../shared/peers/swift (setup.sh the
# first time; its S3 API on 127.0.0.1:8080), runs `python -m bench.compare`, then stops what
# it started, by PID: `coffre up` with SIGTERM, Swift with its stop.sh. A Swift that was
# already running is used and left running. Environment:
#   BENCH_WORKLOADS  (default: put-small,get-small,put-large,get-large,get-range,list-flat,
#                     list-delim,mixed,multipart)
#   BENCH_ROUNDS (3)  BENCH_DURATION (10 seconds per phase)  BENCH_NAME (coffre-vs-swift)
#   BENCH_ONLY=swift  measure Swift alone (no Coffre cluster)
#   BENCH_KEEP_DATA=1 keep Coffre's temporary data root
#   BENCH_SELF_TEST=0 skip the client-ceiling measurement printed under the table
#   SWIFT_PEER_DIR    (../shared/peers/swift)   COFFRE_CONFIG (conf/local.toml)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
SWIFT_DIR="${SWIFT_PEER_DIR:-$(cd "$ROOT/.." && pwd)/shared/peers/swift}"
SWIFT_RUN="${SWIFT_PEER_RUN_DIR:-/tmp/swift-peer}"
SWIFT_ENDPOINT="http://127.0.0.1:${SWIFT_PROXY_PORT:-8080}"
CONFIG="${COFFRE_CONFIG:-conf/local.toml}"
WORKLOADS="${BENCH_WORKLOADS:-put-small,get-small,put-large,get-large,get-range,list-flat,list-delim,mixed,multipart}"
ROUNDS="${BENCH_ROUNDS:-3}"
DURATION="${BENCH_DURATION:-10}"
NAME="${BENCH_NAME:-coffre-vs-swift}"
ONLY="${BENCH_ONLY:-}"

DATA=""
COFFRE_PID=""
SWIFT_STARTED=0

log() { echo "[bench] $*" >&2; }

cleanup() {
    if [ -n "$COFFRE_PID" ] && kill -0 "$COFFRE_PID" 2>/dev/null; then
        log "stopping coffre up (pid $COFFRE_PID)"
        kill -TERM "$COFFRE_PID" 2>/dev/null || true
        wait "$COFFRE_PID" 2>/dev/null || true
    fi
    if [ "$SWIFT_STARTED" = 1 ]; then
        log "stopping swift"
        "$SWIFT_DIR/stop.sh" >&2 || true
    fi
    if [ -n "$DATA" ] && [ -z "${BENCH_KEEP_DATA:-}" ]; then
        rm -rf "$DATA"
    elif [ -n "$DATA" ]; then
        log "coffre data kept in $DATA"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() {  # port -> true if nothing listens on 127.0.0.1:port
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {  # a port the kernel just handed out, hence free
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

swift_healthy() {
    curl -fs -o /dev/null --max-time 2 "$SWIFT_ENDPOINT/healthcheck"
}

start_swift() {
    if swift_healthy; then
        log "swift already running at $SWIFT_ENDPOINT: using it, leaving it running"
        return
    fi
    if [ ! -f "$SWIFT_RUN/etc/swift.conf" ]; then
        # WARNING: no per-request access log lines written during the load runs.
        SWIFT_LOG_LEVEL="${SWIFT_LOG_LEVEL:-WARNING}" "$SWIFT_DIR/setup.sh" >&2
    fi
    SWIFT_STARTED=1
    "$SWIFT_DIR/start.sh" >&2
}

# Writes the config coffre up runs with: conf/local.toml, on other ports if those are taken.
coffre_config() {
    local cfg="$DATA/bench.toml" listen_port first_port
    cp "$CONFIG" "$cfg"
    listen_port=$(sed -n 's/^listen *= *"127.0.0.1:\([0-9]*\)".*/\1/p' "$cfg")
    first_port=$(sed -n 's/^first_port *= *\([0-9]*\).*/\1/p' "$cfg")
    local busy=0 p
    for p in "$listen_port" $(seq "$first_port" $((first_port + 15))); do
        port_free "$p" || busy=1
    done
    if [ "$busy" = 1 ]; then
        # Nodes take first_port + i: pick a free base and check the next 16 ports too.
        listen_port=$(free_port)
        for _ in $(seq 1 20); do
            first_port=$(( ($(free_port) % 20000) + 30000 ))
            busy=0
            for p in $(seq "$first_port" $((first_port + 15))); do port_free "$p" || busy=1; done
            [ "$busy" = 0 ] && break
        done
        sed -i -e "s/^listen *= *\"127.0.0.1:[0-9]*\"/listen = \"127.0.0.1:$listen_port\"/" \
               -e "s/^first_port *= *[0-9]*/first_port = $first_port/" "$cfg"
        log "default ports busy: coffre on 127.0.0.1:$listen_port, nodes from $first_port"
    fi
    echo "$cfg"
}

start_coffre() {
    DATA="$(mktemp -d /tmp/coffre-bench.XXXXXX)"
    local cfg
    cfg="$(coffre_config)"
    log "starting coffre up (data $DATA)"
    COFFRE_DATA="$DATA" "$ROOT/.venv/bin/coffre" up --config "$cfg" >"$DATA/up.log" 2>&1 &
    COFFRE_PID=$!
    for _ in $(seq 1 600); do
        grep -q "Coffre is up" "$DATA/up.log" 2>/dev/null && break
        kill -0 "$COFFRE_PID" 2>/dev/null || { cat "$DATA/up.log" >&2; log "coffre up died"; exit 1; }
        sleep 0.2
    done
    grep -q "Coffre is up" "$DATA/up.log" || { cat "$DATA/up.log" >&2; log "coffre up: timeout"; exit 1; }
    [ -f "$DATA/credentials.toml" ] || { log "no $DATA/credentials.toml"; exit 1; }
    COFFRE_ENDPOINT=$(sed -n 's/^endpoint *= *"\(.*\)"/\1/p' "$DATA/credentials.toml")
    log "coffre up at $COFFRE_ENDPOINT"
}

start_swift
ARGS=(--workloads "$WORKLOADS" --rounds "$ROUNDS" --duration "$DURATION")
if [ "$ONLY" = swift ]; then
    ARGS+=(--a-name swift --a-endpoint "$SWIFT_ENDPOINT" --a-access-key test:tester
           --a-secret-key testing --name "${BENCH_NAME:-swift}")
else
    start_coffre
    ARGS+=(--a-name coffre --a-endpoint "$COFFRE_ENDPOINT" --a-credentials "$DATA/credentials.toml"
           --b-name swift --b-endpoint "$SWIFT_ENDPOINT" --b-access-key test:tester
           --b-secret-key testing --name "$NAME")
fi
if [ "${BENCH_SELF_TEST:-1}" = 1 ]; then
    # The client's own ceiling, measured in the same run, goes under the table.
    log "measuring the load generator's ceiling (--self-test)"
    CEILING="$("$PY" -m bench.loadgen --self-test | sed -n '/^signer/p;/^# ceiling/,$p' || true)"
    ARGS+=(--note "Load generator ceiling in this run (\`python -m bench.loadgen --self-test\`):

\`\`\`
$CEILING
\`\`\`")
fi
"$PY" -m bench.compare "${ARGS[@]}" "$@"
