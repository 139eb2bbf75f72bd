#!/usr/bin/env bash
# make demo-pool: a whole agent pool on this machine. kube-fake stands in for Kubernetes (each pod of the pool's
# Deployment is a real iac-agent on its own 127.0.0.N, running fake-terraform), iac-devplane is the control plane
# and iac-coordinator scales the pool from ground truth (cycle 1 s, scale-down window 4 s, demand read from the
# plane's /admin/demand). A burst of plan and plan_and_apply tasks over several workspaces makes the pool grow
# (its status table is printed every few seconds); the applies are then confirmed one by one and the pool shrinks
# back to its minimum while the remaining applies are still reserved or running. A watcher checks all along that
# no pod holding a running task or a slot 0 reservation is ever deleted; at the end each removed pod's agent is
# checked once more from its own log and state file. The closing summary gives the tasks by outcome, the peak pod
# count, the coordinator's scale events (Kubernetes Events) and whether anything was lost; the exit status is
# non-zero when anything was (a task not applied/success/planned_and_finished, or a busy or reserved pod removed).
# Loopback only, ephemeral ports; everything lives in a temporary directory removed at the end, and every process
# started here is stopped on exit or Ctrl-C. Takes about 40 seconds.
set -euo pipefail
build=${1:-build}
bin=$(cd "$build" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/iac-demo-pool.XXXXXX")
started=$SECONDS

pool=pool-demo
ns=terraform
deploy=iac-agent-$pool
min=1 max=8 slots=4
n_apply=6 n_plan_ws=3 plans_per_ws=3

coord_pid='' kube_pid='' plane_pid='' watch_pid=''
stop() { # stop PID [seconds before SIGKILL]
    local p=$1 grace=${2:-5} i
    [ -n "$p" ] || return 0
    kill "$p" 2>/dev/null || return 0
    for ((i = 0; i < grace * 10; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}
cleanup() {
    trap - EXIT
    trap '' INT TERM # a second Ctrl-C must not leave processes behind
    # The watcher and the coordinator first (nothing scales any more), then kube-fake, which stops its pods.
    stop "$watch_pid" 1
    stop "$coord_pid"
    stop "$kube_pid" 10
    stop "$plane_pid"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

fail() { # message; shows the tails of the logs, then exits non-zero (cleanup runs on EXIT)
    echo "demo-pool: $*" >&2
    for f in coordinator kube-fake devplane; do
        [ -s "$work/$f.log" ] || continue
        echo "--- last lines of the $f log" >&2
        grep -v '^\[20' "$work/$f.log" | tail -n 15 >&2 || true
    done
    exit 1
}
wait_for() { # seconds command...: polls the command every 0.2 s until it succeeds
    local limit=$1 i
    shift
    for ((i = 0; i < limit * 5; i++)); do "$@" && return 0; sleep 0.2; done
    return 1
}
elapsed() { echo "t+$((SECONDS - started))s"; }
field() { # field NAME < json: the first value of a string or number member NAME
    { grep -o "\"$1\":\"\{0,1\}[^\",}]*" || true; } | sed -n 1p | sed "s/^\"$1\":\"\{0,1\}//"
}
hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
get() { curl -fsS --max-time 10 "$@"; } # every request here: a server that hangs must not hang the demo
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for b in iac-agent iac-coordinator iac-devplane kube-fake fake-terraform; do
    [ -x "$bin/$b" ] || fail "$bin/$b is missing (run 'make all')"
done
command -v curl >/dev/null || fail "curl is missing (run 'make deps')"

# The three servers run in sessions of their own (setsid), so that a Ctrl-C reaches only this script, whose trap
# stops each of them once: kube-fake then stops its pods gracefully.

# ---- the control plane -------------------------------------------------------------------------------------------
# A fresh random pool token: the agents read it from the Deployment's Secret, the coordinator from its token file.
token="apt_${pool}_$(hex 32)"
printf '%s' "$token" >"$work/pool-token"
chmod 600 "$work/pool-token"
echo "== iac-devplane (pool $pool)"
setsid "$bin/iac-devplane" --listen 127.0.0.1 --port 0 --pool "$pool" --token "$token" \
    --ready-file "$work/devplane.json" --data-dir "$work" >"$work/devplane.log" 2>&1 &
plane_pid=$!
wait_for 10 test -s "$work/devplane.json" || fail "iac-devplane did not start"
api_port=$(field api_port <"$work/devplane.json")
cc_port=$(field cc_port <"$work/devplane.json")
plane="http://127.0.0.1:$api_port"
echo "   API $plane, C&C port $cc_port"

# ---- kube-fake, seeded with the pool's token Secret and Deployment (1 replica) -----------------------------------
# Every pod's agent listens on the same status port at its own address, as in a cluster; the port is picked at
# random below the kernel's ephemeral range and checked free, the addresses from a random base.
for _ in $(seq 50); do agent_port=$((20000 + RANDOM % 12000)); port_free "$agent_port" && break; done
ip_base="127.0.0.$((60 + RANDOM % 150))"
cat >"$work/seed.json" <<EOF
{"items": [
 {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "iac-agent-token-$pool", "namespace": "$ns"},
  "type": "Opaque", "stringData": {"token": "$token"}},
 {"apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "$deploy", "namespace": "$ns", "labels": {"app": "iac-agent", "pool-id": "$pool"}},
  "spec": {"replicas": $min, "selector": {"matchLabels": {"app": "iac-agent", "pool-id": "$pool"}},
   "template": {"metadata": {"labels": {"app": "iac-agent", "pool-id": "$pool"}},
    "spec": {"terminationGracePeriodSeconds": 30, "containers": [{"name": "agent", "image": "iac-agent:demo",
     "ports": [{"name": "status", "containerPort": $agent_port}],
     "readinessProbe": {"httpGet": {"path": "/readyz", "port": "status"}},
     "env": [{"name": "POOL_ID", "value": "$pool"}, {"name": "POOL_TYPE", "value": "k8s"},
      {"name": "IAC_AGENT_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
      {"name": "IAC_AGENT_TOKEN", "valueFrom": {"secretKeyRef": {"name": "iac-agent-token-$pool", "key": "token"}}},
      {"name": "IAC_API_ENDPOINT", "value": "127.0.0.1"}, {"name": "PLATFORM_HOST", "value": "127.0.0.1"},
      {"name": "SERVER_PORT", "value": "$api_port"}, {"name": "CC_SERVER_PORT", "value": "$cc_port"},
      {"name": "IAC_AGENT_SLOTS", "value": "$slots"},
      {"name": "IAC_AGENT_DRAIN_TIMEOUT", "value": "1s"}, {"name": "IAC_AGENT_CANCEL_GRACE", "value": "1s"},
      {"name": "IAC_ENGINE_PATH", "value": "$bin/fake-terraform"},
      {"name": "FAKE_TF_PLAN_DELAY_MS", "value": "6000"}, {"name": "FAKE_TF_APPLY_DELAY_MS", "value": "2000"}]
    }]}}}}
]}
EOF
kube_token=$(hex 16)
echo "== kube-fake (Deployment $ns/$deploy, $min replica; pods on $ip_base and up, status port $agent_port)"
setsid "$bin/kube-fake" --listen 127.0.0.1 --port 0 --ready-file "$work/kube-fake.json" --token "$kube_token" \
    --seed "$work/seed.json" --bin-dir "$bin" --work-dir "$work/kube" --pod-ip-base "$ip_base" \
    --readiness-interval 200ms --stop-grace 5s >"$work/kube-fake.log" 2>&1 &
kube_pid=$!
wait_for 10 test -s "$work/kube-fake.json" || fail "kube-fake did not start"
kube="http://127.0.0.1:$(field port <"$work/kube-fake.json")"
kget() { get -H "Authorization: Bearer $kube_token" "$kube$1"; }
cat >"$work/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kube-fake
  cluster:
    server: $kube
contexts:
- name: kube-fake
  context:
    cluster: kube-fake
    user: demo
    namespace: $ns
current-context: kube-fake
users:
- name: demo
  user:
    token: $kube_token
EOF
chmod 600 "$work/kubeconfig"

# ---- the coordinator ---------------------------------------------------------------------------------------------
cat >"$work/pools.json" <<EOF
{"pools": [{"id": "$pool", "namespace": "$ns", "deployment": "$deploy", "agent_port": $agent_port,
            "slots_per_pod": $slots, "min_replicas": $min, "max_replicas": $max,
            "headroom": {"slot0": 1, "plan": 1}, "scale_up_window": "0s", "scale_down_window": "4s",
            "max_remove_per_cycle": 1, "pod_startup_timeout": "60s",
            "demand_url": "$plane/admin/demand", "token_file": "$work/pool-token"}]}
EOF
echo "== iac-coordinator (cycle 1s; min $min, max $max, $slots slots per pod, headroom 1 slot 0 + 1 plan slot," \
     "scale-down window 4s)"
setsid "$bin/iac-coordinator" --config "$work/pools.json" --kubeconfig "$work/kubeconfig" --listen 127.0.0.1:0 \
    --cycle 1s --leader-elect=false --identity demo-coordinator >"$work/coordinator.log" 2>&1 &
coord_pid=$!
coord_port() { sed -n 's/.* API on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/coordinator.log" | sed -n 1p; }
coord_up() { [ -n "$(coord_port)" ]; }
wait_for 10 coord_up || fail "iac-coordinator did not start"
coord="http://127.0.0.1:$(coord_port)"
status() { "$bin/iac-coordinator" status --server "$coord"; }
last_show=-100
show_status() { echo; echo "--- $(elapsed): iac-coordinator status"; status || true; last_show=$SECONDS; }
tick() { # in every wait loop: the three servers still run, and the status table every 4 s
    kill -0 "$plane_pid" 2>/dev/null || fail "iac-devplane exited"
    kill -0 "$kube_pid" 2>/dev/null || fail "kube-fake exited"
    kill -0 "$coord_pid" 2>/dev/null || fail "iac-coordinator exited"
    [ $((SECONDS - last_show)) -lt 4 ] || show_status
}

pods_json() { kget /admin/pods; }
live_pods() { # pods of the Deployment that are not being deleted
    pods_json | sed 's/"gone":.*//' | grep -o '{"namespace":[^}]*}' | grep "\"deployment\":\"$deploy\"" |
        grep -c '"deleting":false' || true
}
one_pod_serving() { # the pod is Ready and its agent heartbeats at the plane
    [ "$(pods_json | grep -c '"ready":true')" -ge 1 ] &&
        get "$plane/admin/agents" | grep '"heartbeats":[1-9]' >/dev/null
}
coord_sees_pod() { status 2>/dev/null | grep ' ready ' >/dev/null; }
wait_for 30 one_pod_serving || fail "the first pod did not become ready"
wait_for 10 coord_sees_pod || fail "the coordinator does not see the pod"
show_status

# ---- the watcher: no pod holding work is ever deleted -------------------------------------------------------------
# Every 0.3 s: kube-fake's pods first, then the coordinator's pool view (GET /v1/pools). A pod newly seen deleting is
# checked against the view read after it, which is at least as new as the observation the scale-down was decided
# from: a slot of that pod with a task (running, or slot 0 reserved) is a violation. The peak of live pods is kept.
# (After the run, each removed pod's agent is also asked through its log and state file, which no race can hide.)
watch_pool() {
    set +e
    local peak=0 pods view deleting name holders live
    : >"$work/deleted"
    : >"$work/violations"
    while :; do
        pods=$(pods_json 2>/dev/null) || { sleep 0.3; continue; }
        view=$(get "$coord/v1/pools" 2>/dev/null) || { sleep 0.3; continue; }
        live=$(printf '%s' "$pods" | sed 's/"gone":.*//' | grep -o '{"namespace":[^}]*}' |
            grep "\"deployment\":\"$deploy\"" | grep -c '"deleting":false')
        if [ "$live" -gt "$peak" ]; then peak=$live; echo "$peak" >"$work/peak"; fi
        # Pod objects of the view, one per line; those with a slot holding a task.
        holders=$(printf '%s' "$view" | sed 's/{"name":"/\n&/g' | grep '^{"name":"' | grep '"task_id":[0-9]' |
            sed 's/^{"name":"\([^"]*\)".*/\1/')
        deleting=$( (printf '%s' "$pods" | sed 's/"gone":.*//' | grep -o '{"namespace":[^}]*}' |
            grep '"deleting":true'; printf '%s' "$pods" | sed 's/.*"gone"://' | grep -o '{"namespace":[^}]*}' |
            grep '"deleted":true') | sed 's/.*"name":"\([^"]*\)".*/\1/')
        for name in $deleting; do
            grep -qx "$name" "$work/deleted" && continue
            echo "$name" >>"$work/deleted"
            if printf '%s\n' "$holders" | grep -x "$name" >/dev/null; then
                echo "$(elapsed) pod $name was deleted while its slots held work:" \
                     "$(printf '%s' "$view" | sed 's/{"name":"/\n&/g' | grep "^{\"name\":\"$name\"" |
                        grep -o '"slot_id":[0-9]*,"status":"[a-z_]*","task_id":[0-9][0-9]*' |
                        sed 's/"slot_id":\([0-9]*\),"status":"\([a-z_]*\)","task_id":/\1:\2#/' | tr '\n' ' ')" \
                     >>"$work/violations"
            fi
        done
        sleep 0.3
    done
}
echo "$(live_pods)" >"$work/peak"
watch_pool &
watch_pid=$!

# ---- the burst ---------------------------------------------------------------------------------------------------
apply_tasks=() plan_tasks=()
make_ws() { # id: a workspace like examples/hello under that id
    sed "s/\"name\": \"hello\"/\"workspace_id\": \"$1\", \"name\": \"$1\"/" "$top/examples/hello/workspace.json" |
        get -X POST --data-binary @- "$plane/admin/workspaces" >/dev/null
}
queue() { # workspace type → task id
    get -X POST -d "{\"task_type\":\"$2\",\"description\":\"make demo-pool\"}" \
        "$plane/admin/workspaces/$1/tasks" | field task_id
}
for i in $(seq "$n_apply"); do make_ws "hello-$i"; done
for i in $(seq "$n_plan_ws"); do make_ws "review-$i"; done
echo
echo "== $(elapsed): a burst of tasks: $n_apply plan_and_apply (workspaces hello-1..$n_apply) and" \
     "$((n_plan_ws * plans_per_ws)) plan ($plans_per_ws on each of review-1..$n_plan_ws)"
for i in $(seq "$n_apply"); do
    apply_tasks+=("$(queue "hello-$i" plan_and_apply)")
    if [ "$i" -le "$plans_per_ws" ]; then
        for j in $(seq "$n_plan_ws"); do plan_tasks+=("$(queue "review-$j" plan)"); done
    fi
done
all_tasks=("${apply_tasks[@]}" "${plan_tasks[@]}")
echo "   plan_and_apply: ${apply_tasks[*]}; plan: ${plan_tasks[*]}"
sleep 1.5
echo "   $(elapsed): iac-coordinator explain ${apply_tasks[n_apply - 1]}"
"$bin/iac-coordinator" explain "${apply_tasks[n_apply - 1]}" --server "$coord" | sed 's/^/     /' || true

task_status() { { get "$plane/admin/tasks/$1" || true; } | field status; }
count_status() { # status tasks...: how many have it
    local want=$1 n=0 t
    shift
    for t in "$@"; do [ "$(task_status "$t")" = "$want" ] && n=$((n + 1)); done
    echo "$n"
}
all_in() { # "status|status" tasks...: every task's status is one of them
    local want=$1 t
    shift
    for t in "$@"; do
        case "|$want|" in *"|$(task_status "$t")|"*) ;; *) return 1 ;; esac
    done
}
# The pool grows; the plans finish, and each plan_and_apply ends its plan apply_pending with slot 0 reserved.
deadline=$((SECONDS + 90))
until all_in "apply_pending|applied|failed|cancelled" "${apply_tasks[@]}" &&
      all_in "success|failed|cancelled" "${plan_tasks[@]}"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "the burst did not finish planning within 90 s"
    tick
    sleep 0.5
done
sleep 1.2 # one coordinator cycle: its table then shows every reservation
show_status
echo
echo "== $(elapsed): every plan done; $(count_status apply_pending "${apply_tasks[@]}") applies wait for" \
     "confirmation, each holding slot 0 of its pod. Example: iac-coordinator explain ${apply_tasks[0]}"
"$bin/iac-coordinator" explain "${apply_tasks[0]}" --server "$coord" | sed 's/^/   /' || true

# ---- confirm the applies, one every 4 s: the pool shrinks under the applies still reserved or running ------------
echo
echo "== $(elapsed): confirming the applies one by one (POST /admin/tasks/{id}/confirm)"
for t in "${apply_tasks[@]}"; do
    [ "$(task_status "$t")" = apply_pending ] || continue
    get -X POST -d '{"apply_description":"make demo-pool"}' "$plane/admin/tasks/$t/confirm" >/dev/null ||
        fail "the confirmation of task $t was refused"
    echo "   $(elapsed): task $t confirmed"
    for _ in 1 2 3 4 5 6 7 8; do sleep 0.5; tick; done
done

# ---- back to the minimum -----------------------------------------------------------------------------------------
echo
echo "== $(elapsed): waiting for the last applies and for the pool to return to $min pod"
at_rest() {
    all_in "applied|success|planned_and_finished|failed|cancelled" "${all_tasks[@]}" || return 1
    [ "$(kget "/apis/apps/v1/namespaces/$ns/deployments/$deploy/scale" | sed 's/"status".*//' | field replicas)" \
        = "$min" ] || return 1
    local p
    p=$(pods_json | sed 's/"gone":.*//' | grep -o '{"namespace":[^}]*}' | grep -c "\"deployment\":\"$deploy\"")
    [ "$p" = "$min" ] && [ "$(live_pods)" = "$min" ]
}
deadline=$((SECONDS + 90))
until at_rest; do
    [ "$SECONDS" -lt "$deadline" ] || break
    tick
    sleep 0.5
done
rested=0
at_rest && rested=1
sleep 1 # one more coordinator cycle, so that its last table shows the pool at rest
show_status
stop "$watch_pid" 1
watch_pid=''

# ---- summary -----------------------------------------------------------------------------------------------------
lost=0
echo
echo "================================================================ summary ($(elapsed))"
declare -A by_outcome=()
stuck=()
for t in "${all_tasks[@]}"; do
    s=$(task_status "$t")
    by_outcome[$s]=$((${by_outcome[$s]:-0} + 1))
    case "$s" in applied|success|planned_and_finished) ;; *) stuck+=("$t:$s"); lost=1 ;; esac
done
line=""
for s in $(printf '%s\n' "${!by_outcome[@]}" | sort); do line="$line, ${by_outcome[$s]} $s"; done
echo "tasks:       ${#all_tasks[@]} queued (${#apply_tasks[@]} plan_and_apply, ${#plan_tasks[@]} plan): ${line#, }"
[ "${#stuck[@]}" -eq 0 ] || echo "             NOT FINISHED WELL: ${stuck[*]}"

events=$(kget "/api/v1/namespaces/$ns/events?fieldSelector=involvedObject.name%3D$deploy" |
    sed 's/{"kind":"Event"/\n&/g' | grep '^{"kind":"Event"')
ups=$(printf '%s\n' "$events" | grep -c '"reason":"ScaledUp"' || true)
downs=$(printf '%s\n' "$events" | grep -c '"reason":"ScaledDown"' || true)
aborted=$(printf '%s\n' "$events" | grep -c '"reason":"ScaleDownAborted"' || true)
echo "pods:        started at $min, peak $(cat "$work/peak"), now $(live_pods) (min $min, max $max);" \
     "$(grep -c . "$work/deleted" || true) pods removed"
echo "scale events (Kubernetes Events on $ns/$deploy): $ups ScaledUp, $downs ScaledDown, $aborted ScaleDownAborted"
# In the order they were made (resourceVersion), with the time and the coordinator's message up to its counts.
printf '%s\n' "$events" | grep '"reason":"Scale' | while IFS= read -r ev; do
    printf '%012d %s %-16s %s\n' "$(printf '%s' "$ev" | field resourceVersion)" \
        "$(printf '%s' "$ev" | field lastTimestamp | sed 's/.*T\([0-9:]*\).*/\1/')" \
        "$(printf '%s' "$ev" | field reason)" \
        "$(printf '%s' "$ev" | sed -n 's/.*"message":"\([^"]*\)".*/\1/p' | sed 's/; needs .*//')"
done | sort | sed 's/^[0-9]* /  /'

# Each removed pod, asked through its agent: a running task at SIGTERM makes the agent log that it waits for it;
# a reservation still held at exit stays in its state file (the pod's directory outlives the pod).
for name in $(cat "$work/deleted"); do
    dir="$work/kube/pods/$name"
    if grep -q 'waiting up to .* running task' "$dir/log" 2>/dev/null; then
        echo "pod $name: its agent had running tasks when it was told to stop" >>"$work/violations"
    fi
    if grep -Eq '"status":"(reserved|running)"' "$dir/data/state.json" 2>/dev/null; then
        echo "pod $name: its agent still held a slot when it exited: $(grep -o '"slots":\[[^]]*\]' \
            "$dir/data/state.json")" >>"$work/violations"
    fi
done
if [ -s "$work/violations" ]; then
    lost=1
    echo "busy or reserved pods removed:"
    sed 's/^/  /' "$work/violations"
else
    echo "busy or reserved pods removed: none ($(grep -c . "$work/deleted" || true) pods removed, each idle)"
fi
if [ "$rested" != 1 ]; then
    lost=1
    echo "the pool did not return to its minimum of $min pod within 90 s"
fi
if [ "$lost" = 0 ]; then
    echo "lost:        nothing — every task finished (applied, success or planned_and_finished) and no pod" \
         "holding work was removed"
else
    echo "lost:        SOMETHING WAS LOST (see above)"
    fail "the demo failed"
fi
