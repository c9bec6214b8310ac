#!/usr/bin/env bash
# Checks that the README's two commands work on a *fresh* Debian 12 machine
# that has only the Rust toolchain (issue #11), without trusting whatever
# this machine has installed by hand.
#
# What it does, in order (each step is timed; a table is printed at the end):
#   1. host tools  installs on this machine what building a root needs:
#                  debootstrap, slirp4netns (the root's network), git.
#   2. base root   builds a pristine Debian 12 (bookworm) root with
#                  `debootstrap --variant=minbase` from the apt mirror this
#                  machine uses, and caches it as a tarball; every run
#                  unpacks that tarball into a new root (a root that a
#                  previous run built in is never reused).
#   3. newcomer    installs in the root what a newcomer "with the Rust
#                  toolchain" has: ca-certificates, curl, git, gcc, libc6-dev.
#   4. rustup      installs rustup's stable toolchain the documented way:
#                  curl https://sh.rustup.rs | sh -s -- -y --profile minimal
#   5. clone       `git clone`s the repository into the root (committed
#                  work only: no target/, no node_modules/).
#   6. devnet      the README's first command, `bash .ci/devnet.sh`, in the
#                  background, until the network commits a transaction
#                  (submitted and read back with the built `conclave`), then
#                  stops it as Ctrl-C would and checks no process is left.
#   7. test        the README's second command, `CI=true bash .ci/test.sh`.
#
# Choices, and why:
#   - minbase: the smallest Debian 12 there is, what the official
#     `debian:bookworm` container image is built from. A cloud image has a
#     little more (procps, iproute2, python3, ...), never a compiler, so a
#     build that works on minbase works there too. --variant default gives
#     debootstrap's default set instead.
#   - gcc and libc6-dev are preinstalled: rustc links through `cc`, so a
#     machine on which the Rust toolchain works has them. Nothing else of
#     the build's (g++, make, clang, libclang-dev, nodejs, npm, the wasm32
#     target, the npm packages) is there: installing those is setup.sh's
#     job, and is what this checks. Packages are installed without
#     "Recommends", so nothing comes in by accident.
#   - Everything in the root runs as root (as in a Debian container), in its
#     own mount, pid, uts and ipc namespaces, chroot'ed into the root, with
#     fresh /proc, /sys (read-only), a minimal /dev, /dev/pts and /dev/shm.
#     /tmp is the root's own on-disk /tmp, as on Debian 12 (no tmpfs).
#   - Network (--net): the build needs the package registries, the tests and
#     the devnet only loopback. By default ("isolated") the root gets its own
#     network namespace, so its loopback, and the devnet's and the tests'
#     ports, are its own and cannot collide with anything on this machine;
#     slirp4netns gives that namespace outbound access through this
#     machine's sockets (user-mode NAT; no firewall or routing change on
#     this machine). "--net host" shares this machine's network instead.
#   - How this machine reaches the internet is copied in, and only that:
#     the apt mirror, /etc/resolv.conf, apt's proxy and Valid-Until
#     settings, and CA certificates added locally in
#     /usr/local/share/ca-certificates (e.g. a TLS-inspecting proxy's); on
#     an ordinary machine there are none.
#   - The root keeps its own caches: cargo's registry and target directory,
#     rustup's toolchains and npm's cache all live inside the root, so a run
#     is a cold build. This machine's ~/.cache/conclave is never touched.
#
# It never unmounts or deletes anything outside its work directory, and only
# ends processes it started (those chroot'ed into its root, its slirp4netns).
set -euo pipefail

SELF=$(readlink -f "$0")
SUITE=bookworm
HOSTNAME_IN_ROOT=conclave-fresh
# The environment of every command in the root: a login shell (`bash -l`)
# then reads /etc/profile and ~/.profile, where rustup adds ~/.cargo/bin to
# PATH, as it would for a newcomer who opens a new terminal.
ROOT_ENV=(HOME=/root USER=root LOGNAME=root SHELL=/bin/bash TERM=dumb LANG=C.UTF-8
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)

usage() {
  cat <<EOF
Usage: bash .ci/fresh.sh [OPTIONS]

Builds a clean Debian 12 root and runs the README's two commands in it
(\`bash .ci/devnet.sh\` until the devnet commits a transaction, then
\`bash .ci/test.sh\`), timing each step. Needs root, and takes long: the root
builds everything cold (RocksDB's C++, wasmtime, ...), about 35-45 minutes
of 2 cores for the first command, then the test build and the test suite:
plan on 1-1.5 hours on 2 cores. Exits non-zero, naming the step, if a step
fails. Run it in the background and follow its log, e.g.
  bash .ci/fresh.sh > /var/tmp/fresh.out 2>&1 &

Options (and the environment variables that set them):
  --work DIR         work directory (CONCLAVE_FRESH_WORK, default
                     /var/tmp/conclave-fresh); it holds the cached base
                     tarball, the root of the last run (left for inspection;
                     the next run deletes it) and the logs (logs/<time>/,
                     logs/latest, summary.log). Must not be inside the repo.
  --repo DIR         repository to check (default: the one holding this script)
  --rev REV          commit to check out (default: HEAD)
  --uncommitted[=PATH,...]
                     also apply the uncommitted changes to tracked files
                     (\`git diff HEAD\`), all of them or those of the given
                     paths only, to check a fix before committing it;
                     untracked files are never copied
  --net MODE         isolated (default; own network namespace, outbound
                     through slirp4netns) or host (CONCLAVE_FRESH_NET)
  --variant V        debootstrap variant: minbase (default) or default
                     (CONCLAVE_FRESH_VARIANT)
  --mirror URL       Debian mirror (CONCLAVE_FRESH_MIRROR; default: the one
                     that serves "$SUITE" in this machine's apt sources)
  --security-mirror URL   (CONCLAVE_FRESH_SECURITY_MIRROR; default: the one
                     that serves "$SUITE-security" here, or deb.debian.org's)
  --refresh-base     debootstrap again instead of using the cached tarball
  --devnet-timeout MIN   bound on the devnet step, cold build included
                     (CONCLAVE_FRESH_DEVNET_TIMEOUT, default 90)
  --test-timeout MIN     bound on the test step (CONCLAVE_FRESH_TEST_TIMEOUT,
                     default 180)
  --skip-devnet, --skip-test   leave out one of the README's commands
  -h, --help         this text
EOF
}

# ---------------------------------------------------------------------------
# Inside the namespaces: mount what a system needs, chroot, run one command.
# ---------------------------------------------------------------------------

# `fresh.sh __ns-init ROOT COMMAND [VAR=VALUE...]` runs as pid 1 of a new pid
# namespace, in a new mount namespace whose mounts are private (unshare's
# default): all it mounts here is seen by nothing else and disappears with
# the namespace, so nothing needs unmounting afterwards.
ns_init() {
  local root=$1 cmd=$2
  shift 2
  mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
  mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
  # A minimal /dev: the usual character devices, bound from this machine's,
  # a private devpts instance and a /dev/shm.
  mount -t tmpfs -o nosuid,noexec,mode=0755 tmpfs "$root/dev"
  local n
  for n in null zero full random urandom tty; do
    : > "$root/dev/$n"
    mount --bind "/dev/$n" "$root/dev/$n"
  done
  mkdir "$root/dev/pts" "$root/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts "$root/dev/pts"
  ln -s pts/ptmx "$root/dev/ptmx"
  mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$root/dev/shm"
  ln -s /proc/self/fd "$root/dev/fd"
  ln -s /proc/self/fd/0 "$root/dev/stdin"
  ln -s /proc/self/fd/1 "$root/dev/stdout"
  ln -s /proc/self/fd/2 "$root/dev/stderr"
  hostname "$HOSTNAME_IN_ROOT"

  local rc=0
  chroot "$root" /usr/bin/env -i "$@" /bin/bash -l -c "$cmd" || rc=$?

  # Anything still running was left behind by the command (when this
  # process exits, the kernel kills the rest of the namespace). Give it a
  # few seconds to finish on its own, then name it.
  local waited=0
  while :; do
    ns_leftovers "$root"
    [ ${#LEFT[@]} -eq 0 ] || [ "$waited" -ge 10 ] && break
    sleep 1
    waited=$((waited + 1))
  done
  if [ ${#LEFT[@]} -gt 0 ]; then
    echo "fresh: left behind by the command (killed now):" >&2
    printf '  %s\n' "${LEFT[@]}" >&2
  fi
  return "$rc"
}

# LEFT=("pid command line"...): the live processes of this pid namespace
# other than its init (pid 1), from the root's /proc (this namespace's).
# The pids are listed before anything is forked to read them, so the
# helpers forked here are not among them.
ns_leftovers() {
  local root=$1 p pid stat state pids=()
  for p in "$root"/proc/[0-9]*; do
    pid=${p##*/}
    [ "$pid" = 1 ] || pids+=("$pid")
  done
  LEFT=()
  for pid in "${pids[@]}"; do
    read -r stat 2>/dev/null < "$root/proc/$pid/stat" || continue # gone
    state=${stat##*) }
    state=${state%% *}
    [ "$state" != Z ] || continue # exited, not yet reaped
    LEFT+=("$pid $(tr '\0' ' ' < "$root/proc/$pid/cmdline" 2>/dev/null | cut -c1-200)")
  done
}

if [ "${1:-}" = __ns-init ]; then
  shift
  ns_init "$@"
  exit
fi

# ---------------------------------------------------------------------------
# Options.
# ---------------------------------------------------------------------------

WORK=${CONCLAVE_FRESH_WORK:-/var/tmp/conclave-fresh}
REPO=$(cd "$(dirname "$SELF")/.." && pwd)
REV=HEAD
UNCOMMITTED=false
UNCOMMITTED_PATHS=()
NET=${CONCLAVE_FRESH_NET:-isolated}
VARIANT=${CONCLAVE_FRESH_VARIANT:-minbase}
MIRROR=${CONCLAVE_FRESH_MIRROR:-}
SECURITY_MIRROR=${CONCLAVE_FRESH_SECURITY_MIRROR:-}
REFRESH_BASE=false
DEVNET_TIMEOUT_MIN=${CONCLAVE_FRESH_DEVNET_TIMEOUT:-90}
TEST_TIMEOUT_MIN=${CONCLAVE_FRESH_TEST_TIMEOUT:-180}
RUN_DEVNET=true
RUN_TEST=true

die() { echo "fresh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --work) WORK=${2:?--work needs a directory}; shift ;;
    --repo) REPO=${2:?--repo needs a directory}; shift ;;
    --rev) REV=${2:?--rev needs a commit}; shift ;;
    --uncommitted) UNCOMMITTED=true ;;
    --uncommitted=*)
      UNCOMMITTED=true
      IFS=, read -r -a UNCOMMITTED_PATHS <<< "${1#--uncommitted=}"
      ;;
    --net) NET=${2:?--net needs isolated or host}; shift ;;
    --variant) VARIANT=${2:?--variant needs minbase or default}; shift ;;
    --mirror) MIRROR=${2:?}; shift ;;
    --security-mirror) SECURITY_MIRROR=${2:?}; shift ;;
    --refresh-base) REFRESH_BASE=true ;;
    --devnet-timeout) DEVNET_TIMEOUT_MIN=${2:?}; shift ;;
    --test-timeout) TEST_TIMEOUT_MIN=${2:?}; shift ;;
    --skip-devnet) RUN_DEVNET=false ;;
    --skip-test) RUN_TEST=false ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
  shift
done

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, namespaces)"
case $NET in isolated | host) ;; *) die "--net: isolated or host, not '$NET'" ;; esac
case $VARIANT in minbase | default) ;; *) die "--variant: minbase or default, not '$VARIANT'" ;; esac
[[ $DEVNET_TIMEOUT_MIN =~ ^[0-9]+$ && $TEST_TIMEOUT_MIN =~ ^[0-9]+$ ]] || die "timeouts are whole minutes"
REPO=$(git -C "$REPO" rev-parse --show-toplevel 2>/dev/null) || die "not a git repository: $REPO"
if $UNCOMMITTED && [ "$REV" != HEAD ]; then die "--uncommitted goes with HEAD only"; fi

# The work directory: absolute, no whitespace (mount tables escape it), not
# the repository or inside it (nor the other way round), and either new,
# empty, or one this script made (it holds our marker file). Everything this
# script deletes or unmounts is under it.
case $WORK in /*) ;; *) die "--work must be an absolute path" ;; esac
[[ $WORK =~ ^[A-Za-z0-9/._+-]+$ ]] || die "--work: use letters, digits and / . _ + - only"
mkdir -p "$WORK"
WORK=$(readlink -f "$WORK")
[ "$WORK" != / ] || die "--work cannot be /"
case "$WORK/" in "$REPO"/*) die "--work must not be inside the repository ($REPO)" ;; esac
case "$REPO/" in "$WORK"/*) die "--work must not contain the repository" ;; esac
MARKER=$WORK/.conclave-fresh
if [ ! -e "$MARKER" ]; then
  [ -z "$(ls -A "$WORK")" ] || die "$WORK is not empty and was not made by this script"
  echo "work directory of .ci/fresh.sh" > "$MARKER"
fi

ROOT=$WORK/root                   # the root of this run
NETNS=$WORK/netns                 # its network namespace (isolated mode)
STAMP=$(date -u +%Y%m%d-%H%M%S)
LOGS=$WORK/logs/$STAMP            # this run's logs and summary
mkdir -p "$LOGS" "$WORK/cache"
ln -sfn "$STAMP" "$WORK/logs/latest"

# ---------------------------------------------------------------------------
# Helpers on this machine.
# ---------------------------------------------------------------------------

say() { echo "fresh: $*"; }
fmt_secs() { printf '%d:%02d:%02d' $(($1 / 3600)) $(($1 % 3600 / 60)) $(($1 % 60)); }

# Copies its input to its output, and to FILE with each line prefixed by
# the time (seconds since the epoch), to time the phases of a long command
# afterwards. Ctrl-C is for the command: this keeps reading to its end.
stamp() {
  local line
  trap '' INT
  while IFS= read -r line || [ -n "$line" ]; do
    printf '%(%s)T %s\n' -1 "$line" >> "$1"
    printf '%s\n' "$line"
  done
}
export -f stamp

# Processes chroot'ed into our root (this script started every one of
# them), as pids. /proc/PID/root names a process's root directory.
root_pids() {
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    case $r in "$ROOT" | "$ROOT"/*) echo "${p##*/}" ;; esac
  done
}

# Mount points under the work directory in this machine's mount table,
# deepest first. (Normally only the network namespace's file; the root's
# mounts live and die in its own mount namespaces.)
work_mounts() {
  awk -v w="$WORK/" 'index($5 "/", w) == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

# Ends our processes, stops slirp4netns, unmounts what is under $WORK.
release_work() {
  local pids
  pids=$(root_pids)
  if [ -n "$pids" ]; then
    say "killing processes still in the root: $(echo "$pids" | paste -sd' ')"
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 1
  fi
  stop_slirp
  local m
  for m in $(work_mounts); do
    umount "$m" 2>/dev/null || umount -l "$m" || say "could not unmount $m"
  done
  rm -f "$NETNS"
}

# Stops our slirp4netns: the one named by $WORK/slirp.pid, checked to be
# slirp4netns on our namespace file before it is ended (also one left by a
# run that was killed outright).
stop_slirp() {
  local f=$WORK/slirp.pid pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q "^slirp4netns .*$NETNS"; then
    kill "$pid" 2>/dev/null || true
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$f"
}

# IN_ROOT=(...): the command line that runs shell COMMAND in the root, in
# new mount, pid, uts and ipc namespaces and in the root's network (own or
# this machine's). --kill-child: if `unshare` dies, its child (the
# namespace's pid 1) is killed, and with it everything in the namespace.
# Usage: in_root_cmd TIMEOUT_MIN COMMAND [VAR=VALUE...] (0: no timeout)
in_root_cmd() {
  local minutes=$1 cmd=$2
  shift 2
  IN_ROOT=()
  if [ "$minutes" != 0 ]; then IN_ROOT+=(timeout --kill-after=60 "${minutes}m"); fi
  if [ "$NET" = isolated ]; then IN_ROOT+=(nsenter "--net=$NETNS"); fi
  IN_ROOT+=(unshare --mount --uts --ipc --pid --fork --kill-child
    bash "$SELF" __ns-init "$ROOT" "$cmd" "${ROOT_ENV[@]}" "$@")
}
in_root() {
  in_root_cmd "$@"
  "${IN_ROOT[@]}" < /dev/null
}

# The packages installed in the root (read from its dpkg database).
root_packages() {
  dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f='${db:Status-Abbrev} ${Package}\n' 2>/dev/null |
    awk '$1 == "ii" { print $2 }' | sort
}

# The URI of the first enabled `deb` source for suite $1 in this machine's
# apt sources, read as apt reads them: sources.list and sources.list.d/*.list
# (one-line format), sources.list.d/*.sources (deb822). Other files there
# (e.g. *.disabled) are ignored, as apt ignores them.
apt_source_uri() {
  local suite=$1 f
  {
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -f "$f" ] || continue
      # deb [options] URI SUITE COMPONENT...
      awk -v s="$suite" '$1 == "deb" {
          i = 2
          if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
          if ($(i + 1) == s) print $i
        }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] || continue
      # Stanzas of "Field: value" lines, separated by blank lines.
      awk -v s="$suite" '
        function flush(   n, k, a, u) {
          if (f["types"] ~ /(^| )deb( |$)/ && f["enabled"] != "no") {
            n = split(f["suites"], a, " ")
            for (k = 1; k <= n; k++) if (a[k] == s) { split(f["uris"], u, " "); print u[1] }
          }
          delete f
        }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        /^[ \t]/ { f[key] = f[key] " " $0; next }
        { key = tolower(substr($0, 1, index($0, ":") - 1)); f[key] = substr($0, index($0, ":") + 1) }
        END { flush() }' "$f"
    done
  } | head -n 1
}

# ---------------------------------------------------------------------------
# Steps, their timing and the summary.
# ---------------------------------------------------------------------------

STEP_NAMES=()
STEP_RESULTS=()
STEP_SECS=()
STEP_NOTES=()
FAILED_STEP=""
FAILED_LOG=""
SUMMARY_DONE=false

note() { echo "$*" >> "$LOGS/$CURRENT_STEP.notes"; }

# run_step ID TITLE FUNCTION: runs FUNCTION in a subshell with `set -e` in
# force, its output to the terminal and to $LOGS/ID.log, and records its
# wall time, result and notes (the lines the step wrote with `note`). A
# failed step stops the run (the summary is printed on exit).
run_step() {
  local id=$1 title=$2 fn=$3 start rc secs
  CURRENT_STEP=$id
  : > "$LOGS/$id.notes"
  say "=== $title: started $(date -u +%H:%M:%S) UTC (log $LOGS/$id.log)"
  start=$(date +%s)
  set +e
  (
    set -e
    "$fn"
  ) 2>&1 | tee "$LOGS/$id.log"
  rc=${PIPESTATUS[0]}
  set -e
  secs=$(($(date +%s) - start))
  STEP_NAMES+=("$title")
  STEP_SECS+=("$secs")
  STEP_NOTES+=("$(cat "$LOGS/$id.notes")")
  if [ "$rc" = 0 ]; then
    STEP_RESULTS+=(ok)
    say "=== $title: ok in $(fmt_secs "$secs")"
  else
    STEP_RESULTS+=(FAILED)
    FAILED_STEP=$title
    FAILED_LOG=$LOGS/$id.log
    say "=== $title: FAILED (exit $rc) after $(fmt_secs "$secs"); the last lines of its log:"
    tail -n 40 "$LOGS/$id.log" | sed 's/^/    /'
    exit 1
  fi
}

print_summary() {
  local i line
  {
    echo "Conclave fresh-root check, started $STAMP UTC"
    echo "  repository  $REPO @ $(cat "$LOGS/commit" 2>/dev/null || echo "$REV")$($UNCOMMITTED && echo " + uncommitted changes to ${UNCOMMITTED_PATHS[*]:-all tracked files}")"
    echo "  root        Debian 12 $SUITE, debootstrap --variant=$VARIANT, mirror ${MIRROR:-?}"
    echo "  network     $NET$([ "$NET" = isolated ] && echo ' (own namespace and loopback, outbound via slirp4netns)')"
    echo "  host        $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "  logs        $LOGS"
    echo
    printf '%-4s %-28s %-7s %9s  %s\n' "#" step result wall notes
    for i in "${!STEP_NAMES[@]}"; do
      local first=true
      while IFS= read -r line || [ -n "$line" ]; do
        if $first; then
          printf '%-4s %-28s %-7s %9s  %s\n' "$((i + 1))" "${STEP_NAMES[$i]}" "${STEP_RESULTS[$i]}" "$(fmt_secs "${STEP_SECS[$i]}")" "$line"
          first=false
        else
          printf '%-4s %-28s %-7s %9s  %s\n' "" "" "" "" "$line"
        fi
      done <<< "${STEP_NOTES[$i]:-}"
    done
    echo
    if [ -n "$FAILED_STEP" ]; then
      echo "RESULT: FAILED at step '$FAILED_STEP'${FAILED_LOG:+ (log $FAILED_LOG)}"
    else
      echo "RESULT: all steps passed"
    fi
  } | tee "$LOGS/summary.txt"
  { cat "$LOGS/summary.txt"; echo; } >> "$WORK/summary.log"
}

on_exit() {
  local rc=$?
  set +e
  release_work
  if ! $SUMMARY_DONE && [ ${#STEP_NAMES[@]} -gt 0 ]; then
    [ "$rc" = 0 ] || [ -n "$FAILED_STEP" ] || FAILED_STEP="${CURRENT_STEP:-?} (interrupted)"
    print_summary
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. host tools ---------------------------------------------------------
step_host_tools() {
  local need=() pkg
  command -v debootstrap > /dev/null || need+=(debootstrap)
  command -v git > /dev/null || need+=(git)
  command -v ip > /dev/null || need+=(iproute2)
  if [ "$NET" = isolated ]; then command -v slirp4netns > /dev/null || need+=(slirp4netns); fi
  if [ ${#need[@]} -gt 0 ]; then
    say "installing on this machine: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
    note "installed on this machine: ${need[*]}"
  else
    note "already here: debootstrap git iproute2$([ "$NET" = isolated ] && echo ' slirp4netns')"
  fi
  for pkg in unshare nsenter chroot mount timeout; do
    command -v "$pkg" > /dev/null || { echo "missing $pkg (util-linux/coreutils)"; exit 1; }
  done
}

# --- 2. base root ----------------------------------------------------------
step_base_root() {
  # What is left from the previous run: its processes, mounts, then its
  # root (timed apart: it is not part of setting up the new one).
  release_work
  if [ -n "$(work_mounts)" ]; then echo "mounts left under $WORK; not deleting anything"; exit 1; fi
  if [ -e "$ROOT" ]; then
    local t0=$SECONDS
    say "deleting the previous run's root"
    rm -rf --one-file-system -- "$ROOT"
    note "(deleting the previous run's root took $(fmt_secs $((SECONDS - t0))) of this)"
  fi

  local arch key tarball tmp
  arch=$(dpkg --print-architecture)
  key=$(printf '%s' "$SUITE $VARIANT $arch $MIRROR" | sha256sum | cut -c1-12)
  tarball=$WORK/cache/debootstrap-$SUITE-$VARIANT-$arch-$key.tar.gz
  if $REFRESH_BASE || [ ! -f "$tarball" ]; then
    tmp=$WORK/cache/debootstrap.tmp
    rm -rf --one-file-system -- "$tmp"
    say "debootstrap --variant=$VARIANT $SUITE from $MIRROR"
    debootstrap --variant="$VARIANT" --arch="$arch" "$SUITE" "$tmp" "$MIRROR"
    # debootstrap unmounts what it mounted when it succeeds; a failure
    # leaves them, and release_work (on exit) unmounts them.
    tar --numeric-owner --xattrs -C "$tmp" -czf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    rm -rf --one-file-system -- "$tmp"
    note "debootstrap'd, cached as $(basename "$tarball") ($(du -h "$tarball" | cut -f1))"
  else
    note "from the cached $(basename "$tarball")"
  fi
  mkdir "$ROOT"
  tar --numeric-owner --xattrs -C "$ROOT" -xzpf "$tarball"

  # Configure the root as a fresh Debian 12 image is, pointed at the
  # mirror this machine uses.
  rm -f "$ROOT/etc/apt/sources.list"
  cat > "$ROOT/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # This machine's way to reach the archive (a proxy; Valid-Until checks
  # turned off for a snapshot mirror), if it has one.
  apt-config dump | grep -E '^Acquire::(([A-Za-z]+::)?Proxy|Check-Valid-Until|Check-Date)( |::)' \
    > "$ROOT/etc/apt/apt.conf.d/99fresh-host-network" || rm -f "$ROOT/etc/apt/apt.conf.d/99fresh-host-network"
  # Name resolution: this machine's resolvers, or slirp4netns's forwarder
  # when they are on this machine's loopback (not reachable from the root's).
  if [ "$NET" = isolated ] && grep -Eq '^nameserver[[:space:]]+(127\.|::1)' /etc/resolv.conf; then
    echo "nameserver 10.0.2.3" > "$ROOT/etc/resolv.conf"
  else
    grep -E '^(nameserver|search|options)' /etc/resolv.conf > "$ROOT/etc/resolv.conf"
  fi
  echo "$HOSTNAME_IN_ROOT" > "$ROOT/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' \
    "$HOSTNAME_IN_ROOT" > "$ROOT/etc/hosts"
  # As in Debian's container images: packages do not start services (there
  # is no init in the root).
  printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
  chmod 755 "$ROOT/usr/sbin/policy-rc.d"

  # The root's own network namespace, kept in a file under the work
  # directory, with slirp4netns for outbound traffic.
  if [ "$NET" = isolated ]; then
    : > "$NETNS"
    unshare --net="$NETNS" true
    slirp4netns --configure --mtu=65520 --disable-host-loopback \
      --netns-type=path "$NETNS" tap0 > "$LOGS/slirp4netns.log" 2>&1 &
    echo $! > "$WORK/slirp.pid"
    local i
    for i in $(seq 50); do
      nsenter --net="$NETNS" ip -o addr show tap0 2>/dev/null | grep -q 'inet ' && break
      sleep 0.2
    done
    nsenter --net="$NETNS" ip link set lo up
    nsenter --net="$NETNS" ip -o addr show tap0 | grep -q 'inet ' || { echo "slirp4netns did not come up"; exit 1; }
  fi
  note "$(root_packages | wc -l) packages; $(du -sh --one-file-system "$ROOT" | cut -f1)"
}

# --- 3. newcomer packages --------------------------------------------------
NEWCOMER_PKGS=(ca-certificates curl git gcc libc6-dev)
step_newcomer() {
  root_packages > "$LOGS/packages.base"
  in_root 30 "apt-get update && apt-get install -y --no-install-recommends ${NEWCOMER_PKGS[*]}" \
    DEBIAN_FRONTEND=noninteractive
  # CA certificates added locally on this machine (see the top).
  if [ -n "$(ls -A /usr/local/share/ca-certificates 2>/dev/null)" ]; then
    cp -a /usr/local/share/ca-certificates/. "$ROOT/usr/local/share/ca-certificates/"
    in_root 5 "update-ca-certificates"
    note "+ this machine's local CAs: $(cd /usr/local/share/ca-certificates && echo *)"
  fi
  root_packages > "$LOGS/packages.newcomer"
  note "apt: ${NEWCOMER_PKGS[*]} (+$(comm -13 "$LOGS/packages.base" "$LOGS/packages.newcomer" | wc -l) packages with dependencies)"
}

# --- 4. rustup -------------------------------------------------------------
# sh.rustup.rs serves static.rust-lang.org/rustup/rustup-init.sh; the latter
# is tried when the former is not reachable.
step_rustup() {
  # shellcheck disable=SC2016 # expanded in the root
  in_root 30 '
    set -e
    fetch() { curl --proto "=https" --tlsv1.2 -sSf "$1" -o /tmp/rustup-init.sh; }
    if ! fetch https://sh.rustup.rs; then
      echo "sh.rustup.rs not reachable; using static.rust-lang.org/rustup/rustup-init.sh (the same script)"
      fetch https://static.rust-lang.org/rustup/rustup-init.sh
    fi
    sh /tmp/rustup-init.sh -y --profile minimal
    rm -f /tmp/rustup-init.sh'
  # A new login shell finds cargo through ~/.profile, as a newcomer's does.
  in_root 5 'rustc --version && cargo --version && rustup --version 2>/dev/null' | tee "$LOGS/rust-versions"
  note "$(head -n 1 "$LOGS/rust-versions"), profile minimal"
}

# --- 5. clone --------------------------------------------------------------
step_clone() {
  local dest=$ROOT/root/conclave
  git clone --quiet --no-hardlinks "$REPO" "$dest"
  git -C "$dest" checkout --quiet --detach "$REV"
  if $UNCOMMITTED; then
    local changed
    changed=$(git -C "$REPO" diff --name-only HEAD -- "${UNCOMMITTED_PATHS[@]}" | paste -sd' ')
    if [ -n "$changed" ]; then
      git -C "$REPO" diff --binary HEAD -- "${UNCOMMITTED_PATHS[@]}" | git -C "$dest" apply --index
      note "+ uncommitted changes: $changed"
    fi
  fi
  git -C "$dest" rev-parse --short HEAD > "$LOGS/commit"
  note "$(git -C "$dest" log -1 --format='%h %s' | cut -c1-60)"
}

# --- 6. devnet -------------------------------------------------------------
# The README's first command in the background, with a fixed CONCLAVE_HOME,
# until a transaction commits on the network it starts. It writes its four
# homes under $CONCLAVE_HOME/devnet-4/node0..3 and prints a banner
# ("Conclave devnet: 4 validators, ...") once all answer.
DEVNET_HOME=/root/devnet-home
CONCLAVE_BIN=/root/.cache/conclave/target/debug/conclave
step_devnet() {
  local log=$LOGS/devnet-output.log start deadline pid pgid
  if [ "$NET" = host ] && command -v ss > /dev/null && ss -Hltn 'sport >= 26656 and sport <= 26688' | grep -q .; then
    echo "ports 26656-26688 are in use on this machine; the devnet needs them (or use --net isolated)"
    exit 1
  fi
  start=$(date +%s)
  deadline=$((start + DEVNET_TIMEOUT_MIN * 60))
  # Its own session and process group, so that stopping it is Ctrl-C's
  # SIGINT to the whole foreground group.
  in_root_cmd 0 "cd /root/conclave && CONCLAVE_HOME=$DEVNET_HOME bash .ci/devnet.sh"
  # shellcheck disable=SC2016 # expanded by that bash
  setsid bash -c 'set -o pipefail; "$@" < /dev/null 2>&1 | stamp "$0"' \
    "$LOGS/devnet-output.ts" "${IN_ROOT[@]}" > "$log" 2>&1 &
  pid=$!
  sleep 1
  pgid=$(ps -o pgid= -p "$pid" | tr -d ' ' || true)
  pgid=${pgid:-$pid}
  stop_devnet() {
    kill -0 "$pid" 2>/dev/null || return 0
    local stop_at
    stop_at=$(date +%s)
    say "stopping the devnet: SIGINT to its process group (as Ctrl-C)"
    kill -INT -- "-$pgid" 2>/dev/null || true
    local i
    for i in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    if kill -0 "$pid" 2>/dev/null; then
      say "still running 60 s after SIGINT: SIGKILL"
      kill -KILL -- "-$pgid" 2>/dev/null || true
      note "stop: SIGINT was not enough, killed"
    else
      note "stop: exited $(($(date +%s) - stop_at)) s after SIGINT (Ctrl-C)"
    fi
    local rc=0
    wait "$pid" 2>/dev/null || rc=$?
    note "devnet.sh exit status after the stop: $rc"
  }
  trap stop_devnet EXIT
  say "devnet.sh started (log $log); waiting up to $DEVNET_TIMEOUT_MIN min for a committed tx"

  # Submits `set a=1` through node1 and reads it back (the README's tour).
  local probe
  # shellcheck disable=SC2016 # expanded in the root
  probe='set -e
    c='$CONCLAVE_BIN'
    export CONCLAVE_HOME='$DEVNET_HOME'/devnet-4/node1
    id=$($c context list | sed -n "s/.*\"context_id\": *\"\([0-9a-f]\{64\}\)\".*/\1/p" | head -n 1)
    [ -n "$id" ] || { echo "no context yet"; exit 1; }
    echo "context $id"
    $c tx submit --context "$id" --method set --args "{\"key\":\"a\",\"value\":\"1\"}" --wait
    $c query --context "$id" --key a | tee /tmp/query.out
    grep -Eq "^value +1$" /tmp/query.out'
  local last_report=$start now
  while :; do
    now=$(date +%s)
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" && rc=0 || rc=$?
      echo "devnet.sh exited (status $rc) before a transaction committed; the end of its log:"
      tail -n 30 "$log"
      exit 1
    fi
    if [ "$now" -ge "$deadline" ]; then
      echo "no committed transaction within $DEVNET_TIMEOUT_MIN min; the end of the devnet log:"
      tail -n 30 "$log"
      exit 1
    fi
    if grep -q '^Conclave devnet:' "$log"; then
      if in_root 2 "$probe" > "$LOGS/devnet-probe.log" 2>&1; then break; fi
    fi
    if [ $((now - last_report)) -ge 120 ]; then
      say "devnet: $(fmt_secs $((now - start))) elapsed; last line: $(tail -n 1 "$log" | cut -c1-120)"
      last_report=$now
    fi
    sleep 10
  done
  local committed_at took
  committed_at=$(date +%s)
  took=$((committed_at - start))
  say "first transaction committed after $(fmt_secs "$took"):"
  sed 's/^/    /' "$LOGS/devnet-probe.log"
  echo "$took" > "$LOGS/devnet.first-tx-secs"
  # What the command installed.
  root_packages > "$LOGS/packages.devnet"
  local setup_lines
  setup_lines=$(grep '^setup: ' "$log" | sed 's/^setup: //' | paste -sd';' | sed 's/;/; /g' || true)
  note "to the first committed tx: $(fmt_secs "$took") (setup, cold build, start)"
  # Its phases: setup.sh until cargo's first line, the build until cargo's
  # "Finished", the start until the devnet's banner, then the tx.
  local phases
  phases=$(awk -v t0="$start" -v tx="$committed_at" '
    { t = $1; sub(/^[0-9]+ /, "") }
    /^ *(Updating|Downloading|Downloaded|Compiling|Finished|Blocking)/ && !c { c = t }
    /^ *Finished / && !f { f = t }
    /^Conclave devnet:/ && !b { b = t }
    function d(a, z) { return (a && z) ? sprintf("%d:%02d:%02d", (z - a) / 3600, (z - a) % 3600 / 60, (z - a) % 60) : "?" }
    END { printf "setup.sh %s, build %s, start %s, tx %s", d(t0, c), d(c, f), d(f, b), d(b, tx) }' \
    "$LOGS/devnet-output.ts")
  note "  = $phases"
  note "setup.sh: ${setup_lines:-nothing to install}"
  note "apt: +$(comm -13 "$LOGS/packages.newcomer" "$LOGS/packages.devnet" | wc -l) packages with dependencies"
  note "tx: $(awk '/^status / { s = $2 } /^height / && !h { h = $2 } END { print s ", height " h }' "$LOGS/devnet-probe.log"), read back through node1 with its proof"
  stop_devnet
  trap - EXIT
  if grep -q '^fresh: left behind' "$log"; then
    note "processes left behind after Ctrl-C (see devnet-output.log):"
    note "$(sed -n '/^fresh: left behind/,$p' "$log" | tail -n +2)"
  else
    note "no process left behind"
  fi
  local left
  left=$(root_pids)
  if [ -n "$left" ]; then
    echo "processes still in the root after the devnet stopped: $left"
    exit 1
  fi
}

# --- 7. test ---------------------------------------------------------------
step_test() {
  root_packages > "$LOGS/packages.before-test"
  local rc setup_lines start
  start=$(date +%s)
  set +e
  in_root "$TEST_TIMEOUT_MIN" "cd /root/conclave && bash .ci/test.sh" CI=true 2>&1 |
    stamp "$LOGS/test-output.ts" | tee "$LOGS/test-output.log"
  rc=${PIPESTATUS[0]}
  set -e
  root_packages > "$LOGS/packages.test"
  setup_lines=$(grep '^setup: ' "$LOGS/test-output.log" | sed 's/^setup: //' | paste -sd';' | sed 's/;/; /g' || true)
  note "setup.sh: ${setup_lines:-nothing to install}"
  note "apt: +$(comm -13 "$LOGS/packages.before-test" "$LOGS/packages.test" | wc -l) packages"
  note "$(test_counts)"
  # Its phases: the root workspace's build and tests, then the NEAR
  # contract's (the second `cargo test`, which starts building again after
  # the first one's "Running" lines).
  note "  = $(awk -v t0="$start" '
    { t = $1; sub(/^[0-9]+ /, "") }
    /^ *(Updating|Downloading|Downloaded|Compiling|Finished|Blocking)/ { if (!r1 && !c1) c1 = t; if (r1 && !c2) c2 = t }
    /^ *Running / { if (!c2 && !r1) r1 = t; if (c2 && !r2) r2 = t }
    { last = t }
    function d(a, z) { return (a && z) ? sprintf("%d:%02d:%02d", (z - a) / 3600, (z - a) % 3600 / 60, (z - a) % 60) : "?" }
    END { printf "setup.sh %s, workspace build %s, tests %s, NEAR build %s, tests %s", d(t0, c1), d(c1, r1), d(r1, c2), d(c2, r2), d(r2, last) }' \
    "$LOGS/test-output.ts")"
  note "  crates compiled: $(grep -c '^ *Compiling ' "$LOGS/test-output.log" || true) (the devnet's build compiled $(grep -c '^ *Compiling ' "$LOGS/devnet-output.log" 2>/dev/null || echo '?'))"
  if [ "$rc" != 0 ]; then
    note "exit status $rc$([ "$rc" -gt 128 ] && echo " (signal $(kill -l $((rc - 128))))")"
    note "failed: $(grep -E '^test .* \.\.\. FAILED$' "$LOGS/test-output.log" | awk '{ print $2 }' | paste -sd' ' || true)"
    case $rc in 124 | 137) note "(stopped by the $TEST_TIMEOUT_MIN min timeout)" ;; esac
  fi
  return "$rc"
}

# The test counts, from cargo's "test result:" lines.
test_counts() {
  awk '/^test result:/ {
      for (i = 1; i < NF; i++) {
        if ($(i + 1) ~ /^passed/) p += $i
        if ($(i + 1) ~ /^failed/) f += $i
        if ($(i + 1) ~ /^ignored/) g += $i
      }
      n++
    }
    END { printf "%d test result lines: %d passed, %d failed, %d ignored", n, p, f, g }' "$LOGS/test-output.log"
}

# ---------------------------------------------------------------------------
# Main.
# ---------------------------------------------------------------------------

if [ -z "$MIRROR" ]; then
  MIRROR=$(apt_source_uri "$SUITE" || true)
  [ -n "$MIRROR" ] || die "no apt source for '$SUITE' on this machine; give --mirror"
fi
if [ -z "$SECURITY_MIRROR" ]; then
  SECURITY_MIRROR=$(apt_source_uri "$SUITE-security" || true)
  SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
fi
say "work directory $WORK, logs $LOGS"
say "mirror $MIRROR (security: $SECURITY_MIRROR), variant $VARIANT, network $NET"

run_step host "host tools" step_host_tools
run_step base "base root" step_base_root
run_step newcomer "newcomer packages" step_newcomer
run_step rustup "rustup" step_rustup
run_step clone "clone" step_clone
if $RUN_DEVNET; then run_step devnet "bash .ci/devnet.sh -> 1st tx" step_devnet; fi
if $RUN_TEST; then run_step test "CI=true bash .ci/test.sh" step_test; fi
print_summary
SUMMARY_DONE=true
