#!/usr/bin/env bash
# make run: a local control plane (iac-devplane) and one agent on loopback, then the agent's slot table as the
# agent reports it and the heartbeat the plane received. Everything lives in a temporary directory that is removed
# at the end. KEEP=1 leaves both running until Ctrl-C.
set -euo pipefail
build=${1:-build}
work=$(mktemp -d "${TMPDIR:-/tmp}/iac-run.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

api_port=${API_PORT:-18080}
cc_port=$((api_port + 10))
status_port=${STATUS_PORT:-19180}

echo "== starting iac-devplane on 127.0.0.1:$api_port (C&C on $cc_port)"
"$build/iac-devplane" --port "$api_port" --cc-port "$cc_port" --pool pool-dev --ready-file "$work/devplane.json" \
    >"$work/devplane.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/devplane.json" ] && break; sleep 0.05; done
[ -s "$work/devplane.json" ] || { echo "devplane did not start:"; cat "$work/devplane.log"; exit 1; }

# The devplane's default token is deterministic for a pool (dev only): apt_<pool>_<sha256 of "iac-devplane:<pool>">.
token="apt_pool-dev_$(printf 'iac-devplane:pool-dev' | sha256sum | cut -d' ' -f1)"

echo "== starting iac-agent (4 slots, status on 127.0.0.1:$status_port)"
mkdir -p "$work/home" "$work/data"
env -i PATH="$PATH" HOME="$work/home" \
    IAC_API_ENDPOINT=127.0.0.1 SERVER_PORT="$api_port" CC_SERVER_PORT="$cc_port" \
    IAC_AGENT_TOKEN="$token" IAC_AGENT_NAME=local-agent-0 IAC_AGENT_SLOTS=4 \
    IAC_AGENT_DATA_DIR="$work/data" IAC_AGENT_LISTEN="127.0.0.1:$status_port" \
    "$build/iac-agent" >"$work/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$status_port/readyz" >/dev/null 2>&1 && break
    sleep 0.05
done
if ! curl -fsS "http://127.0.0.1:$status_port/readyz" >/dev/null 2>&1; then
    echo "the agent did not become ready:"; cat "$work/agent.log"; exit 1
fi

echo
echo "== the agent's own view (iac-agent status)"
"$build/iac-agent" status --listen "127.0.0.1:$status_port"
echo
echo "== what the control plane received (GET /admin/agents)"
curl -fsS "http://127.0.0.1:$api_port/admin/agents"
echo
echo
echo "== agent log"
cat "$work/agent.log"
if [ "${KEEP:-0}" = 1 ]; then
    echo; echo "KEEP=1: devplane and agent keep running; Ctrl-C stops them."
    wait
fi
