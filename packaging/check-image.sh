#!/usr/bin/env bash
# check-image.sh — `make check-image`: proves that the runtime image's package list is complete without a
# container engine (there is none on the build machines).
#
#   packaging/check-image.sh [BUILD] [CACHE]     BUILD default "build", CACHE default BUILD/image-root
#
# The Dockerfile's runtime stage is debian:bookworm-slim + packaging/runtime-setup.sh + the two binaries. Here:
#   1. `debootstrap --variant=minbase bookworm` into CACHE/base, once (it is reused by later runs);
#   2. a fresh copy of it (CACHE/run) so that packages a previous list installed cannot hide a missing one;
#   3. packaging/runtime-setup.sh in that chroot: exactly runtime-packages.txt, the uid 10001 user, the data dir
#      (apt's lists and archives are cached in CACHE/apt-* between runs);
#   4. iac-agent and iac-coordinator copied to /usr/local/bin, then, inside the chroot: both `--version`s; the
#      coordinator started against an unreachable Kubernetes API (its API must still answer, and `iac-coordinator
#      status` must print its pool); and an agent, as uid 10001, against BUILD/iac-devplane running outside on
#      127.0.0.1 (the chroot shares the network namespace): it registers, connects, becomes ready, downloads and
#      verifies its engine (fake-terraform zipped, when `zip` is on the machine; else IAC_ENGINE_PATH), runs a plan
#      task to success, and exits 0 on SIGTERM.
# Every chroot command runs in a private mount namespace (unshare --mount), so /proc and /dev mounts vanish with it
# and nothing is left mounted on the machine, whatever happens. Needs root. Downloads about 200 MB the first time.
set -euo pipefail

build=${1:-build}
cache=${2:-$build/image-root}
suite=bookworm
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

say() { printf 'check-image: %s\n' "$*"; }
die() { printf 'check-image: FAILED: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mount namespaces)"
for b in iac-agent iac-coordinator iac-devplane fake-terraform; do
    [ -x "$build/$b" ] || die "$build/$b is missing: run 'make' first"
done
build=$(cd "$build" && pwd)
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
base=$cache/base run=$cache/run

if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap \
        >/dev/null
fi

# The mirror this machine's apt already uses (first Debian URI), so the check needs no configuration of its own;
# none found → debootstrap's default.
host_mirror() {
    local uri
    uri=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null |
        grep -v security | head -n 1 || true)
    [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $3 ~ /^bookworm(-updates)?$/ { print $2; exit }' \
        /etc/apt/sources.list 2>/dev/null || true)
    printf '%s' "$uri"
}

# ---- 1. the base root (cached) ----
if [ ! -f "$base/.iac-complete" ]; then
    say "debootstrap --variant=minbase $suite into $base (first run: downloads the base system)"
    rm -rf "$base"
    mkdir -p "$cache/debootstrap-debs"
    # shellcheck disable=SC2046 # no mirror argument when none was found
    debootstrap --variant=minbase --cache-dir="$cache/debootstrap-debs" "$suite" "$base" $(host_mirror) \
        >"$cache/debootstrap.log" 2>&1 || { tail -n 20 "$cache/debootstrap.log" >&2; die "debootstrap failed"; }
    touch "$base/.iac-complete"
else
    say "reusing the $suite base in $base"
fi

# ---- 2. a fresh copy ----
rm -rf "$run"
cp -a "$base" "$run"
rm -f "$run/.iac-complete"
cp -L /etc/resolv.conf "$run/etc/resolv.conf"
# The same suites as debian:bookworm-slim (bookworm, -updates, -security) from this machine's configuration.
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    cp /etc/apt/sources.list.d/debian.sources "$run/etc/apt/sources.list.d/debian.sources"
    : >"$run/etc/apt/sources.list"
fi
mkdir -p "$cache/apt-lists/partial" "$cache/apt-archives/partial"

# root_exec CMD...: replaces the calling (sub)shell with CMD in the chroot, in a private mount namespace with /proc
# and /dev mounted and apt's caches bound. Every step is an exec, so `root_exec … &` gives $! = CMD's pid, which
# the caller can signal. in_root CMD...: the same in a subshell, for commands run to completion.
root_exec() {
    exec unshare --mount --propagation private -- /bin/sh -c '
        r=$1; c=$2; shift 2
        mount -t proc proc "$r/proc" && mount --rbind /dev "$r/dev" &&
        mount --bind "$c/apt-lists" "$r/var/lib/apt/lists" &&
        mount --bind "$c/apt-archives" "$r/var/cache/apt/archives" || exit 125
        exec chroot "$r" "$@"' sh "$run" "$cache" "$@"
}
in_root() { (root_exec "$@"); }

# ---- 3. the runtime stage's setup ----
say "installing the runtime list (packaging/runtime-packages.txt) in a fresh copy"
install -m 0644 "$here/runtime-packages.txt" "$run/tmp/runtime-packages.txt"
install -m 0755 "$here/runtime-setup.sh" "$run/tmp/runtime-setup.sh"
in_root env IAC_SETUP_KEEP_APT=1 /bin/sh /tmp/runtime-setup.sh /tmp/runtime-packages.txt \
    >"$cache/setup.log" 2>&1 || { tail -n 30 "$cache/setup.log" >&2; die "runtime-setup.sh failed"; }
rm -f "$run/tmp/runtime-packages.txt" "$run/tmp/runtime-setup.sh"
listed=$(sed -e 's/#.*//' "$here/runtime-packages.txt" | tr -s ' \t\n' '\n' | grep -c .)
installed=$(in_root dpkg-query -W -f='${Status}\n' | grep -c 'install ok installed')
say "ok: $listed listed packages installed ($installed packages in the root, $(du -sh --exclude="$run/var/lib/apt" \
    --exclude="$run/var/cache/apt" "$run" | cut -f1) without apt's caches; bookworm-slim also drops docs and locales)"

# ---- 4. the binaries ----
install -m 0755 "$build/iac-agent" "$build/iac-coordinator" "$run/usr/local/bin/"
v=$(in_root iac-agent --version) || die "iac-agent --version failed in the chroot: $v"
say "ok: $v"
v=$(in_root iac-coordinator --version) || die "iac-coordinator --version failed in the chroot: $v"
say "ok: $v"

work=$(mktemp -d "${TMPDIR:-/tmp}/iac-check-image.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# wait_for SECONDS CMD...: retries CMD every 0.1 s until it succeeds.
wait_for() {
    local n=$(($1 * 10)); shift
    for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}
# log_port FILE PATTERN: the port a process logged after PATTERN ("… on 127.0.0.1:PORT"); both servers listen on
# port 0 and say which port they got.
log_port() { sed -n "s/.*$2 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p" "$1" | head -n 1; }

# ---- the coordinator runs: unreachable Kubernetes API, its own API still answers ----
mkdir -p "$run/tmp/check"
cat >"$run/tmp/check/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: u, user: {token: check-image-not-a-secret}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: terraform}}]
current-context: x
EOF
root_exec iac-coordinator --kubeconfig=/tmp/check/kubeconfig --leader-elect=false --listen=127.0.0.1:0 \
    --cycle=1s --pool=check-pool >"$work/coordinator.log" 2>&1 &
cpid=$!
pids+=("$cpid")
wait_for 20 grep -q 'API on 127' "$work/coordinator.log" ||
    { cat "$work/coordinator.log" >&2; die "iac-coordinator did not start in the chroot"; }
cport=$(log_port "$work/coordinator.log" "API on")
wait_for 20 curl -fsS "http://127.0.0.1:$cport/healthz" ||
    { cat "$work/coordinator.log" >&2; die "iac-coordinator in the chroot did not answer /healthz"; }
in_root iac-coordinator status --server "http://127.0.0.1:$cport" >"$work/cstatus.txt" 2>&1 || true
grep -q check-pool "$work/cstatus.txt" ||
    { cat "$work/cstatus.txt" "$work/coordinator.log" >&2; die "iac-coordinator status did not show the pool"; }
kill -TERM "$cpid"
rc=0; wait "$cpid" || rc=$?
[ "$rc" = 0 ] || { cat "$work/coordinator.log" >&2; die "iac-coordinator exited $rc after SIGTERM (want 0)"; }
say "ok: iac-coordinator serves its API without a cluster (/healthz, status) and stops cleanly on SIGTERM"

# ---- the agent runs a task against the devplane ----
engine_args=() agent_engine=()
if command -v zip >/dev/null; then
    mkdir -p "$work/zip"
    cp "$build/fake-terraform" "$work/zip/terraform"
    (cd "$work/zip" && zip -q -X terraform_1.6.6_linux_amd64.zip terraform)
    engine_args=(--engine-zip="$work/zip/terraform_1.6.6_linux_amd64.zip" --engine-version=1.6.6)
    engine_how="downloaded from the devplane, SHA-256 checked and unpacked"
else
    install -m 0755 "$build/fake-terraform" "$run/usr/local/bin/terraform"
    agent_engine=(IAC_ENGINE_PATH=/usr/local/bin/terraform)
    engine_how="IAC_ENGINE_PATH (no zip on this machine: the download path was not exercised)"
fi
"$build/iac-devplane" --port 0 --pool pool-check --ready-file "$work/devplane.json" "${engine_args[@]}" \
    >"$work/devplane.log" 2>&1 &
pids+=($!)
wait_for 10 test -s "$work/devplane.json" || { cat "$work/devplane.log" >&2; die "iac-devplane did not start"; }
api_port=$(sed -n 's/.*"api_port":\([0-9]*\).*/\1/p' "$work/devplane.json")
cc_port=$(sed -n 's/.*"cc_port":\([0-9]*\).*/\1/p' "$work/devplane.json")
api="http://127.0.0.1:$api_port"

# The devplane's deterministic dev token (tests/fakes/devplane/README.md), given as a token file, as the chart does.
printf 'apt_pool-check_%s\n' "$(printf 'iac-devplane:pool-check' | sha256sum | cut -d' ' -f1)" \
    >"$run/tmp/check/token"
chown -R 10001:10001 "$run/tmp/check"
chmod 0400 "$run/tmp/check/token"
root_exec /usr/sbin/chroot --userspec=10001:10001 / /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin \
    HOME=/var/lib/iac-agent IAC_API_ENDPOINT=127.0.0.1 SERVER_PORT="$api_port" CC_SERVER_PORT="$cc_port" \
    IAC_AGENT_TOKEN_FILE=/tmp/check/token IAC_AGENT_NAME=check-image-0 IAC_AGENT_LISTEN=127.0.0.1:0 \
    "${agent_engine[@]}" iac-agent >"$work/agent.log" 2>&1 &
apid=$!
pids+=("$apid")
wait_for 20 grep -q 'status server on 127' "$work/agent.log" ||
    { cat "$work/agent.log" >&2; die "iac-agent did not start in the chroot"; }
sport=$(log_port "$work/agent.log" "status server on")
wait_for 30 curl -fsS "http://127.0.0.1:$sport/readyz" ||
    { cat "$work/agent.log" >&2; die "iac-agent in the chroot did not become ready"; }
in_root iac-agent status --listen "127.0.0.1:$sport" >"$work/astatus.txt" 2>&1 ||
    { cat "$work/astatus.txt" >&2; die "iac-agent status failed in the chroot"; }
say "ok: iac-agent (uid 10001) registered and connected to the devplane; iac-agent status:"
sed 's/^/    /' "$work/astatus.txt"

field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p" | head -n 1; }
ws=$(curl -fsS -X POST --data-binary @"$repo/examples/hello/workspace.json" "$api/admin/workspaces" | field workspace_id)
task=$(curl -fsS -X POST -d '{"task_type":"plan"}' "$api/admin/workspaces/$ws/tasks" | field task_id)
status=pending
for _ in $(seq 600); do
    status=$(curl -fsS "$api/admin/tasks/$task" | field status)
    case "$status" in pending|running) sleep 0.1 ;; *) break ;; esac
done
[ "$status" = success ] || { cat "$work/agent.log" >&2; die "plan task $task ended '$status' (want success)"; }
say "ok: plan task $task of examples/hello: success (engine $engine_how)"

kill -TERM "$apid"
rc=0; wait "$apid" || rc=$?
[ "$rc" = 0 ] || { tail -n 20 "$work/agent.log" >&2; die "iac-agent exited $rc after SIGTERM (want 0)"; }
say "ok: iac-agent drained and exited 0 on SIGTERM"
say "PASSED: the runtime package list is complete ($listed packages: $(sed -e 's/#.*//' \
"$here/runtime-packages.txt" | tr -s ' \t\n' ' '))"
