#!/usr/bin/env bash
# make run: a local control plane (iac-devplane) and one agent on loopback; the sample workspace examples/hello is
# created on the plane and a plan_and_apply is queued; the agent plans it with fake-terraform (IAC_ENGINE_PATH; set
# ENGINE=/path/to/terraform to use a real one), the live plan log is shown as the agent writes it, and the task
# ends apply_pending with slot 0 reserved for it. The confirm command is printed (CONFIRM=1 confirms
# automatically; on a terminal the script waits for it), then the warm apply runs on slot 0 to `applied`, a state
# version is stored and slot 0 is idle again. Everything lives in a temporary directory removed at the end.
# KEEP=1 leaves both running until Ctrl-C.
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
    IAC_ENGINE_PATH="${ENGINE:-$(cd "$build" && pwd)/fake-terraform}" \
    FAKE_TF_APPLY_DELAY_MS="${FAKE_TF_APPLY_DELAY_MS:-400}" \
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
echo "== the agent registered (iac-agent status)"
"$build/iac-agent" status --listen "127.0.0.1:$status_port"

api="http://127.0.0.1:$api_port"
field() { # field NAME < json: the value of a top-level string or number field
    sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p" | head -n 1
}
ws=$(curl -fsS -X POST --data-binary @examples/hello/workspace.json "$api/admin/workspaces" | field workspace_id)
task=$(curl -fsS -X POST -d '{"task_type":"plan_and_apply"}' "$api/admin/workspaces/$ws/tasks" | field task_id)
echo
echo "== workspace $ws (examples/hello): plan_and_apply queued as task $task; live plan log:"
log="$work/data/workspaces/$ws/$task/.iac-task.log"
status=pending
for _ in $(seq 600); do
    status=$(curl -fsS "$api/admin/tasks/$task" | field status)
    case "$status" in running|pending) ;; *) break ;; esac
    sleep 0.05
    if [ -f "$log" ] && [ -z "${tail_pid:-}" ]; then tail -n +1 -f "$log" & tail_pid=$!; pids+=("$tail_pid"); fi
done
sleep 0.2
[ -n "${tail_pid:-}" ] && kill "$tail_pid" 2>/dev/null
echo
echo "== task $task: $status"
curl -fsS "$api/admin/tasks/$task" | sed 's/,"plan_output_tail":"[^"]*"//' | head -c 600; echo
echo
echo "== the agent's slots now"
"$build/iac-agent" status --listen "127.0.0.1:$status_port"
if [ "$status" != apply_pending ]; then
    echo "the task did not reach apply_pending; agent log:"; cat "$work/agent.log"; exit 1
fi
echo
echo "Slot 0 stays reserved for task $task until its apply; the work directory (providers, plan.out) is kept:"
ls -a "$work/data/workspaces/$ws/$task"
confirm_cmd="curl -X POST -d '{\"apply_description\":\"make run\"}' $api/admin/tasks/$task/confirm"
echo
echo "== confirm the apply with:"
echo "   $confirm_cmd"
if [ "${CONFIRM:-0}" = 1 ]; then
    echo "   (CONFIRM=1: confirming now)"
    curl -fsS -X POST -d '{"apply_description":"make run CONFIRM=1"}' "$api/admin/tasks/$task/confirm" >/dev/null
elif [ -t 0 ]; then
    echo "   (waiting for it; Ctrl-C stops everything)"
else
    echo "   (or run 'make run CONFIRM=1' to confirm automatically; not waiting: no terminal)"
    exit 0
fi
echo
echo "== live apply log:"
tail_pid=
for _ in $(seq 36000); do
    status=$(curl -fsS "$api/admin/tasks/$task" | field status)
    stage=$(curl -fsS "$api/admin/tasks/$task" | field stage)
    case "$status" in applied|failed|cancelled) break ;; esac
    if [ "$stage" = applying ] && [ -z "$tail_pid" ] && [ -f "$log" ]; then
        tail -n +1 -F "$log" 2>/dev/null & tail_pid=$!; pids+=("$tail_pid")
    fi
    sleep 0.05
done
sleep 0.3
[ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null
[ -z "$tail_pid" ] && curl -fsS "$api/admin/tasks/$task/apply-output"
echo
echo "== task $task: $status"
versions=$(curl -fsS "$api/admin/workspaces/$ws" | field state_versions)
echo "state versions stored for $ws: $versions"
echo
echo "== the agent's slots after the apply"
"$build/iac-agent" status --listen "127.0.0.1:$status_port"
[ "$status" = applied ] || { echo "agent log:"; cat "$work/agent.log"; exit 1; }
if [ "${KEEP:-0}" = 1 ]; then
    echo; echo "KEEP=1: devplane and agent keep running (API $api); Ctrl-C stops them."
    wait
fi
