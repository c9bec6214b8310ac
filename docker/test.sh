#!/usr/bin/env bash
# The consortium compose file, tested offline with real parts: real docker,
# the real node image, a real anvil, a real Prometheus (issue #13).
#
#   sudo bash docker/test.sh            # CI runs it as its own step
#
# Steps, each bounded in time:
#   1. docker: installs docker.io, docker-compose, debootstrap and
#      prometheus (Debian) if missing and starts dockerd if it is not
#      running. If dockerd cannot start, it says so and exits non-zero.
#   2. images, from local files only (no registry is reachable here): a
#      Debian 12 base made with debootstrap (cached), the node image from
#      docker/Dockerfile with the `conclave` binary cargo builds on this
#      machine, and anvil (npm) and prometheus (Debian) images on that base.
#   3. compose up: 4 validators healthy; txs submitted from this machine
#      through a validator's JSON-RPC commit on all four.
#   4. `docker kill` a validator: commits go on; `docker start` it: it
#      catches up.
#   5. `docker network disconnect` a validator: it falls behind; reconnect:
#      it catches up with the same state root.
#   6. `compose restart` of every validator: nothing lost, heights go on.
#   7. Prometheus: every target up; every dashboard panel query and alert
#      expression evaluates (docker/check-dashboard.sh); node3, limited to
#      1.5 CPUs (compose's `cpus`, in an override of this test's), paces
#      on 1.5 cores, the others on the machine's.
#   8. A DAO payout voted by three members reaches anvil through the
#      relayer in the compose file.
# FROM_SOURCE=1 builds the node image as a machine with a registry does,
# compiling the release binary in docker/Dockerfile's `build` stage (on a
# local stand-in for the official Rust image, docker/offline/Dockerfile.rust);
# a cold build, so on demand, not in CI.
# It prints the image size, the time from `compose up` to the first
# committed block and each container's memory at idle, and removes what it
# started (containers, network, volumes) on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

PROJECT=conclave-test
CACHE=${CONCLAVE_DOCKER_CACHE:-$HOME/.cache/conclave/docker}
BASE_IMAGE=conclave-test/debian:12
export CONCLAVE_IMAGE=conclave:test
export ANVIL_IMAGE=conclave-test/anvil:local
export PROMETHEUS_IMAGE=conclave-test/prometheus:local
WORK=$(mktemp -d /tmp/conclave-docker.XXXXXX)
IPS=(172.28.5.10 172.28.5.11 172.28.5.12 172.28.5.13)
RPC_PORTS=(26657 26667 26677 26687)
ETH=1000000000000000000
RECIPIENT=0x2222222222222222222222222222222222222222

log() { printf 'docker-test: %s\n' "$*" >&2; }
fail() {
  log "FAILED: $*"
  exit 1
}

if [ "$(id -u)" -ne 0 ]; then
  fail "needs root (it installs packages and starts dockerd)"
fi

# node3 limited to 1.5 CPUs, as an operator may limit a validator: its
# pacing must measure its shortage against that (conclave_cpu_cores).
cat > "$WORK/cpus.yml" << 'YML'
services:
  node3:
    cpus: 1.5
YML
dc() {
  if docker compose version > /dev/null 2>&1; then
    docker compose -p "$PROJECT" -f docker/docker-compose.yml -f "$WORK/cpus.yml" "$@"
  else
    docker-compose -p "$PROJECT" -f docker/docker-compose.yml -f "$WORK/cpus.yml" "$@"
  fi
}

mc() { # mc I ARGS: member I's docker/member.yml project
  local i=$1
  shift
  if docker compose version > /dev/null 2>&1; then
    docker compose -p "conclave-member$i" -f docker/member.yml --env-file "$WORK/member$i.env" "$@"
  else
    docker-compose -p "conclave-member$i" -f docker/member.yml --env-file "$WORK/member$i.env" "$@"
  fi
}

cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ] && docker info > /dev/null 2>&1; then
    log "--- container logs (last 40 lines each) ---"
    dc logs --tail 40 --no-color 2>&1 | tail -400 >&2 || true
  fi
  dc down -v --remove-orphans > /dev/null 2>&1 || true
  for i in 0 1 2 3; do
    if [ -f "$WORK/member$i.env" ]; then
      mc "$i" down -v > /dev/null 2>&1 || true
    fi
  done
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT

# Waits up to $1 seconds for command "${@:2}" to succeed.
wait_for() {
  local secs=$1
  shift
  local deadline=$((SECONDS + secs))
  until "$@" > /dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      return 1
    fi
    sleep 1
  done
}

# --- 1. docker -------------------------------------------------------------
need=()
command -v dockerd > /dev/null || need+=(docker.io)
command -v docker-compose > /dev/null || docker compose version > /dev/null 2>&1 || need+=(docker-compose)
command -v debootstrap > /dev/null || need+=(debootstrap)
command -v prometheus > /dev/null || need+=(prometheus)
command -v python3 > /dev/null || need+=(python3)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null
fi
if ! docker info > /dev/null 2>&1; then
  log "starting dockerd"
  mkdir -p /var/log
  (setsid dockerd > /var/log/conclave-dockerd.log 2>&1 < /dev/null &)
  if ! wait_for 60 docker info; then
    tail -20 /var/log/conclave-dockerd.log >&2 || true
    fail "dockerd does not start on this machine (log above): the compose setup cannot be tested here"
  fi
fi

# --- 2. images -------------------------------------------------------------
mkdir -p "$CACHE"
if ! docker image inspect "$BASE_IMAGE" > /dev/null 2>&1; then
  tarball=$CACHE/debian-12-minbase.tar
  if [ ! -s "$tarball" ]; then
    log "building a Debian 12 base with debootstrap (once; cached in $CACHE)"
    rootfs=$WORK/rootfs
    mirror=$(awk '/^deb / && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2> /dev/null || true)
    if [ -z "$mirror" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
      mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    fi
    debootstrap --variant=minbase bookworm "$rootfs" "${mirror:-http://deb.debian.org/debian}" > "$WORK/debootstrap.log" 2>&1 ||
      { tail -20 "$WORK/debootstrap.log" >&2; fail "debootstrap"; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
  fi
  docker import "$tarball" "$BASE_IMAGE" > /dev/null
fi

if [ "${FROM_SOURCE:-0}" = 1 ]; then
  # The node image as a registry machine builds it: docker/Dockerfile's
  # `build` stage compiles the release binary inside the image, on a
  # stand-in for the official Rust image (on demand; a cold build).
  RUST_IMAGE=conclave-test/rust:1.95
  if ! docker image inspect "$RUST_IMAGE" > /dev/null 2>&1; then
    log "building $RUST_IMAGE (Debian 12 base + rustup)"
    mkdir -p "$WORK/rust"
    cp /etc/ssl/certs/ca-certificates.crt "$WORK/rust/host-ca.crt"
    docker build -q -f docker/offline/Dockerfile.rust -t "$RUST_IMAGE" \
      --build-arg BASE_IMAGE="$BASE_IMAGE" "$WORK/rust" > /dev/null
  fi
  log "building $CONCLAVE_IMAGE from source (release, inside docker)"
  started=$SECONDS
  docker build -f docker/Dockerfile -t "$CONCLAVE_IMAGE" \
    --build-arg BUILD_IMAGE="$RUST_IMAGE" --build-arg BASE_IMAGE="$BASE_IMAGE" . \
    > "$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log" >&2; fail "docker build from source"; }
  log "built from source in $((SECONDS - started)) s"
  # The CLI on this machine is the image's own binary (both Debian 12).
  container=$(docker create "$CONCLAVE_IMAGE")
  docker cp -q "$container:/usr/local/bin/conclave" "$WORK/conclave"
  docker rm -f "$container" > /dev/null
  BIN=$WORK/conclave
else
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/conclave/target}
  log "building conclave (dev profile, as .ci/devnet.sh)"
  cargo build -q -p conclave-node --bin conclave
  BIN=$CARGO_TARGET_DIR/debug/conclave
  mkdir -p docker/prebuilt
  # Debug info is for a debugger, not for the image.
  objcopy --strip-debug "$BIN" docker/prebuilt/conclave
  log "building $CONCLAVE_IMAGE"
  docker build -q -f docker/Dockerfile -t "$CONCLAVE_IMAGE" \
    --build-arg BUILD_IMAGE="$BASE_IMAGE" --build-arg BASE_IMAGE="$BASE_IMAGE" \
    --build-arg PREBUILT=docker/prebuilt/conclave . > /dev/null
fi
anvil_bin=$(find contracts/evm/node_modules/@foundry-rs -path '*anvil*' -name anvil -type f | head -1)
[ -x "$anvil_bin" ] || fail "no anvil binary: run bash .ci/setup.sh first"
for tool in anvil prometheus; do
  ctx=$WORK/$tool
  mkdir -p "$ctx"
  case $tool in
    anvil) cp "$anvil_bin" "$ctx/anvil" ;;
    prometheus) cp "$(command -v prometheus)" "$ctx/prometheus" ;;
  esac
  image=$ANVIL_IMAGE
  [ "$tool" = prometheus ] && image=$PROMETHEUS_IMAGE
  docker build -q -f docker/offline/Dockerfile.tool -t "$image" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg TOOL="$tool" "$ctx" > /dev/null
done
image_size=$(docker image inspect -f '{{.Size}}' "$CONCLAVE_IMAGE")
base_size=$(docker image inspect -f '{{.Size}}' "$BASE_IMAGE")
log "node image: $((image_size / 1000000)) MB (base $((base_size / 1000000)) MB)"

# --- 3. compose up ---------------------------------------------------------
# One member's compose file, with the example .env, is valid too.
if docker compose version > /dev/null 2>&1; then
  docker compose --env-file docker/member.env.example -f docker/member.yml config -q
else
  docker-compose --env-file docker/member.env.example -f docker/member.yml config -q
fi || fail "docker/member.yml does not parse with docker/member.env.example"
dc down -v --remove-orphans > /dev/null 2>&1 || true
log "compose up"
up_start=$SECONDS
dc up -d --no-build > "$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; fail "compose up"; }

cid() { dc ps -q "$1"; }
healthy() { [ "$(docker inspect -f '{{.State.Health.Status}}' "$(cid "$1")")" = healthy ]; }
for i in 0 1 2 3; do
  wait_for 240 healthy "node$i" || fail "node$i never became healthy"
done
log "4 validators healthy"
CTX=$(docker exec "$(cid node0)" cat /net/context)
# Member homes copied out of the volume: the CLI on this machine signs with
# them and talks to the validators over their JSON-RPC.
for i in 0 1 2 3; do
  docker cp -q "$(cid "node$i"):/net/node$i" "$WORK/node$i"
done

cli() { # cli I ARGS...: the CLI as member I, against validator I
  local i=$1
  shift
  "$BIN" --home "$WORK/node$i" --node "http://${IPS[$i]}:${RPC_PORTS[$i]}" "$@"
}
info_field() { # info_field I FIELD
  cli "$1" context info --context "$CTX" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}
height() { info_field "$1" height 2> /dev/null || echo 0; }
at_least() { [ "$(height "$1")" -ge "$2" ]; }
# Load: DAO proposals to an unanchored chain, never voted on.
LOAD='{"domain":{"evm":{"chain_id":1,"proxy":"0x0000000000000000000000000000000000000001"}},"action":{"native":{"to":"0x0000000000000000000000000000000000000001","amount":"1"}},"description":"load"}'
submit() { # submit I: a tx from member I through validator I, until it commits
  cli "$1" tx submit --context "$CTX" --method propose --args "$LOAD" --wait --timeout-secs 60 > /dev/null
}

cli 0 tx submit --context "$CTX" --method configure --args '{"threshold":3}' --wait --timeout-secs 60 > /dev/null ||
  fail "configuring the DAO through node0's RPC did not commit"
# Configuring twice commits as a failed tx (the dashboard shows failed tx/s).
if cli 1 tx submit --context "$CTX" --method configure --args '{"threshold":2}' --wait --timeout-secs 60 > "$WORK/again.out" 2>&1; then
  fail "configuring the DAO twice succeeded"
fi
grep -q "status  failed" "$WORK/again.out" || { cat "$WORK/again.out" >&2; fail "the second configure did not commit as failed"; }
submit 0 || fail "a tx submitted through node0's RPC did not commit"
first_block=$((SECONDS - up_start))
log "first block committed $first_block s after compose up"
h=$(height 0)
for i in 1 2 3; do
  wait_for 60 at_least "$i" "$h" || fail "node$i never reached height $h"
done
log "tx committed on all four (height $h)"

# --- 4. kill and start -----------------------------------------------------
docker kill "$(cid node3)" > /dev/null
for _ in 1 2 3; do submit 0 || fail "commits stopped with node3 killed"; done
h=$(height 0)
docker start "$(cid node3)" > /dev/null
wait_for 120 at_least 3 "$h" || fail "node3 did not catch up to $h after docker start"
log "node3 killed: commits went on; started: caught up to $h"

# --- 5. partition ----------------------------------------------------------
network=$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}' "$(cid node2)")
before=$(height 2)
docker network disconnect "$network" "$(cid node2)"
for _ in 1 2 3; do submit 0 || fail "commits stopped with node2 cut off"; done
h=$(height 0)
# node2 cannot have received what was committed while it was cut off.
[ "$h" -gt "$before" ] || fail "no commits while node2 was cut off"
# With its service name as an alias again (Prometheus scrapes node2:port).
docker network connect --ip "${IPS[2]}" --alias node2 "$network" "$(cid node2)"
# Its height can only be read again once it is back.
wait_for 120 at_least 2 "$h" || fail "node2 did not catch up to $h after reconnecting"
root_of() { cli "$1" block --context "$CTX" --height "$2" | python3 -c "import json,sys; print(json.load(sys.stdin)['header']['state_root'])"; }
[ "$(root_of 0 "$h")" = "$(root_of 2 "$h")" ] || fail "node2's state root at $h differs"
log "node2 cut off at $before while the others reached $h; reconnected: caught up, same state root"

# --- 6. restart ------------------------------------------------------------
before=$(height 0)
dc restart node0 node1 node2 node3 > /dev/null 2>&1
for i in 0 1 2 3; do
  wait_for 240 healthy "node$i" || fail "node$i unhealthy after restart"
done
at_least 0 "$before" || fail "node0 lost heights across the restart"
submit 1 || fail "no commit after the restart"
[ "$(height 1)" -gt "$before" ] || fail "heights did not go on after the restart"
log "restarted every validator: heights went on from $before"

# --- 8. DAO payout through the relayer --------------------------------------
wait_for 180 sh -c "[ \"\$(docker inspect -f '{{.State.Status}}' $(cid relayer))\" = running ]" ||
  fail "the relayer never started"
proxy=$(docker exec "$(cid relayer)" sh -c "awk -F'\"' '/^proxy/ {print \$2}' /net/relay.toml")
log "proxy $proxy"
call() { # call I METHOD ARGS
  cli "$1" tx submit --context "$CTX" --method "$2" --args "$3" --wait --timeout-secs 60
}
id=$(call 0 propose "{\"domain\":{\"evm\":{\"chain_id\":31337,\"proxy\":\"$proxy\"}},\"action\":{\"native\":{\"to\":\"$RECIPIENT\",\"amount\":\"$ETH\"}},\"description\":\"grant\"}" |
  sed -n 's/^result  //p' | python3 -c "import json,sys; print(json.load(sys.stdin)['id'])")
# Two more members vote it through (threshold 3).
call 1 vote "{\"id\":$id}" > /dev/null
call 2 vote "{\"id\":$id}" | grep -q 'executed.*true' || fail "the payout vote did not execute the proposal"
balance() {
  python3 - "$RECIPIENT" << 'PY'
import json, sys, urllib.request
req = urllib.request.Request("http://127.0.0.1:8545", data=json.dumps(
    {"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": [sys.argv[1], "latest"]}).encode(),
    headers={"content-type": "application/json"})
print(int(json.load(urllib.request.urlopen(req, timeout=5))["result"], 16))
PY
}
paid() { [ "$(balance)" = "$ETH" ]; }
wait_for 120 paid || fail "the recipient holds $(balance) wei, not 1 ETH"
log "DAO payout of 1 ETH reached anvil through the relayer"

# --- 7. Prometheus ---------------------------------------------------------
promtool check config docker/prometheus/prometheus.yml > /dev/null || fail "promtool check config"
promtool check config docker/prometheus/member.yml > /dev/null || fail "promtool check config (member.yml)"
promtool check rules docker/prometheus/alerts.yml > /dev/null || fail "promtool check rules"
(cd docker/prometheus && promtool test rules alerts_test.yml > /dev/null) || fail "promtool test rules"
targets_up() {
  python3 - << 'PY'
import json, sys, urllib.request
d = json.load(urllib.request.urlopen("http://127.0.0.1:9090/api/v1/targets", timeout=5))
ts = d["data"]["activeTargets"]
down = [t["scrapeUrl"] for t in ts if t["health"] != "up"]
print(len(ts), "targets;", "down:", down)
sys.exit(0 if ts and not down else 1)
PY
}
wait_for 120 targets_up || { targets_up || true; fail "not every Prometheus target is up"; }
# Rates need a few scrapes of every target, and the relayer's figures the
# payout's checkpoint.
prom_has() {
  python3 - "$1" << 'PY'
import json, sys, urllib.parse, urllib.request
q = urllib.parse.urlencode({"query": sys.argv[1]})
d = json.load(urllib.request.urlopen("http://127.0.0.1:9090/api/v1/query?" + q, timeout=5))
sys.exit(0 if d["status"] == "success" and d["data"]["result"] else 1)
PY
}
wait_for 120 prom_has 'min(count_over_time(up[1m])) >= 4' || fail "Prometheus has too few scrapes"
wait_for 120 prom_has 'conclave_anchor_height > 0' || fail "Prometheus never saw the anchored checkpoint"
# What each node's pacing measures its CPU against: node3's quota, the
# others' share of the whole machine.
wait_for 60 prom_has 'conclave_cpu_cores{node="node3"} == 1.5' ||
  fail "node3 does not see its 1.5-CPU limit (conclave_cpu_cores)"
wait_for 60 prom_has "conclave_cpu_cores{node=\"node0\"} == $(nproc)" ||
  fail "node0 does not see the machine's $(nproc) CPUs (conclave_cpu_cores)"
wait_for 120 prom_has 'min(count_over_time(conclave_relay_submissions_total[1m])) >= 3' ||
  fail "Prometheus never saw the relayer's submissions"
# Empty on a healthy consortium: sealed payloads nobody could open, relay
# errors that need an operator.
bash docker/check-dashboard.sh http://127.0.0.1:9090 --allow-empty 'Sealed payloads|ConclaveRelayFatalError' || fail "a dashboard query or alert expression failed"
log "Prometheus: every target up, every panel and alert expression evaluates"

# --- figures ---------------------------------------------------------------
log "idle memory per container:"
docker stats --no-stream --format '  {{.Name}}: {{.MemUsage}}' >&2
log "node image $((image_size / 1000000)) MB; first committed block $first_block s after compose up"
# --- 9. one member per machine (member.yml) ---------------------------------
# Four members as docs/operations.md walks them through, each its own
# compose project of docker/member.yml with its own home and .env; on one
# machine, so each uses its own ports where four machines would use their
# own addresses (member 0 the defaults its Prometheus scrapes).
dc down -v --remove-orphans > /dev/null 2>&1 || true
ids=()
peers=()
for i in 0 1 2 3; do
  home=$WORK/member$i
  install -d -o 10001 -g 10001 -m 0700 "$home"
  docker run --rm -v "$home:/home/conclave/node" "$CONCLAVE_IMAGE" init \
    --p2p-listen "/ip4/127.0.0.1/tcp/$((26656 + 10 * i))" --rpc-listen "127.0.0.1:$((26657 + 10 * i))" \
    --metrics-listen "127.0.0.1:$((26660 + 10 * i))" > /dev/null
  # The keys the container made in the mounted home: owner-only.
  for key in "$home"/keys/*.key; do
    [ "$(stat -c %a "$key")" = 600 ] || fail "$key has mode $(stat -c %a "$key"), not 600"
  done
  keys=$(docker run --rm -v "$home:/home/conclave/node" "$CONCLAVE_IMAGE" keys show)
  ids+=("$(awk '$1 == "member_id" {print $2}' <<< "$keys")")
  peers+=("/ip4/127.0.0.1/tcp/$((26656 + 10 * i))/p2p/$(awk '$1 == "peer_id" {print $2}' <<< "$keys")")
done
for i in 0 1 2 3; do
  others=()
  for j in 0 1 2 3; do
    [ "$j" = "$i" ] || others+=("${peers[$j]}")
  done
  {
    echo "CONCLAVE_MEMBER_HOME=$WORK/member$i"
    echo "CONCLAVE_PEERS=$(IFS=,; echo "${others[*]}")"
    echo "CONCLAVE_IMAGE=$CONCLAVE_IMAGE"
    echo "PROMETHEUS_IMAGE=$PROMETHEUS_IMAGE"
    echo "PROMETHEUS_PORT=$((39090 + i))"
  } > "$WORK/member$i.env"
  mc "$i" up -d --no-build > "$WORK/member$i.up" 2>&1 || { cat "$WORK/member$i.up" >&2; fail "member $i: compose up"; }
done
member_healthy() { [ "$(docker inspect -f '{{.State.Health.Status}}' "$(mc "$1" ps -q node)")" = healthy ]; }
for i in 0 1 2 3; do
  wait_for 120 member_healthy "$i" || fail "member $i's node never became healthy"
done
peers_of_0() { # member 0's node is connected to the other three
  python3 << 'PY'
import sys, urllib.request
body = urllib.request.urlopen("http://127.0.0.1:26660/metrics", timeout=5).read().decode()
peers = [float(l.split()[1]) for l in body.splitlines() if l.startswith("conclave_p2p_peers ")]
sys.exit(0 if peers and peers[0] >= 3 else 1)
PY
}
wait_for 120 peers_of_0 || fail "member 0's node never connected to the other three (CONCLAVE_PEERS)"
mc 0 exec -T node conclave context create --app kv --members "${ids[1]}" "${ids[2]}" "${ids[3]}" > "$WORK/created.out" 2> "$WORK/created.err" ||
  { cat "$WORK/created.err" >&2; fail "member 0 could not create a context"; }
if grep -q "NOT joined" "$WORK/created.err" || [ "$(grep -c ': joined' "$WORK/created.err")" -ne 3 ]; then
  cat "$WORK/created.err" >&2
  fail "not every member's node joined the context"
fi
mctx=$(tail -1 "$WORK/created.out")
mc 0 exec -T node conclave tx submit --context "$mctx" --method set --args '{"key":"a","value":"1"}' --wait > /dev/null ||
  fail "a tx in the members' context did not commit"
member_height() { mc "$1" exec -T node conclave context info --context "$mctx" | python3 -c "import json,sys; print(json.load(sys.stdin)['height'])"; }
member_at_least() { [ "$(member_height "$1")" -ge "$2" ]; }
h=$(member_height 0)
for i in 1 2 3; do
  wait_for 60 member_at_least "$i" "$h" || fail "member $i's node never reached height $h"
done
member_scraped() {
  python3 - "$1" << 'PY'
import json, sys, urllib.request
d = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/api/v1/targets", timeout=5))
up = [t for t in d["data"]["activeTargets"] if t["labels"]["job"] == "conclave-node" and t["health"] == "up"]
sys.exit(0 if up else 1)
PY
}
wait_for 60 member_scraped 39090 || fail "member 0's Prometheus does not scrape its node"
log "member.yml: four members on their own projects formed a context, committed on all four (height $h), member 0's Prometheus scraping its node"

log "all checks passed"
