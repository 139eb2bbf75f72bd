#!/usr/bin/env bash
# bench/coordcycle.sh — row 5 of the benchmarks: one iac-coordinator cycle (list, scrape, decide) over 1,000 pods.
#
#   bench/coordcycle.sh BUILD [REPEATS]     BUILD: a build directory with iac-coordinator, kube-fake and
#                                           bench/statusstub (make bench: build/bench); REPEATS: cycles (20)
#
# kube-fake --no-kubelet holds a Deployment (replicas PODS) and PODS seeded pods shaped like the chart's, Running
# and Ready, whose podIPs are the loopback addresses of bench/statusstub: one process answering GET /v1/status for
# every pod's agent (4 slots; idle, planning, applying, a few with slot 0 reserved). The coordinator scales that
# pool with min = max = PODS (the decision is "steady"), no demand URL and no token. Each cycle reads the
# Deployment, lists the pods, asks all PODS agents (64 at a time), decides, and writes the deletion cost of every
# pod whose cost is not current — all of them the first time. So two coordinators run, one after the other:
#   1. "first cycle": a coordinator new to the pool, stopped once its first cycle is over: that cycle's duration,
#      patches, open files and peak RSS are reported apart. It sends all PODS patches at once, one connection each,
#      so its soft limit on open files is FIRST_FD_LIMIT (4096): at 1024 some patches fail for want of descriptors
#      (the next cycle writes them) and its API server's accept loop logs EMFILE until the patches are answered;
#   2. the measured one, on the pool whose costs are now current, with a soft limit of 1024 open files (a
#      container's usual default): cycles 1 and 2 are warm-up, then REPEATS cycles are measured.
#
# Timing: iac_pool_cycles_total counts a cycle when it starts and iac_pool_cycle_duration_seconds is written when it
# ends, so the first /metrics that shows cycle N+1 started carries cycle N's duration; /metrics is polled (every
# 15 ms) only around each tick. Between ticks, once cycle N is surely over (0.75 of the period after its start), GET
# /v1/pools checks what cycle N saw: PODS pods, every agent answered, no cycle error, the decision "steady", no pod
# patched. A cycle whose view does not hold up is not counted (another cycle is measured instead); a cycle longer
# than 0.75 of the period is counted, but its view cannot be checked ("unverified").
#
# Output (stdout): one "S coord.cycle_ms N" line per counted cycle, "S coord.rss_kib N" (VmRSS after each) and
# "V key value" facts for bench/run.sh, then one line "coordcycle key=value …" with the summary. Progress and the
# commands run go to stderr. Exit 1 when fewer than REPEATS cycles could be counted or something did not start.
# Environment: PODS (1000), CYCLE_MS (2000: the coordinator's --cycle), FIRST_FD_LIMIT (4096), KEEP=1 keeps the
# scratch directory. Loopback only; every process started here is stopped on exit.
set -u

usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
BUILD=$1 REPEATS=${2:-20} PODS=${PODS:-1000} CYCLE_MS=${CYCLE_MS:-2000} FIRST_FD_LIMIT=${FIRST_FD_LIMIT:-4096}
for b in iac-coordinator kube-fake bench/statusstub; do
    [ -x "$BUILD/$b" ] || { echo "coordcycle: $BUILD/$b is missing (make BUILD=$BUILD all bench-bins)" >&2; exit 1; }
done
command -v curl > /dev/null || { echo "coordcycle: curl is missing" >&2; exit 1; }
case "$REPEATS$PODS$CYCLE_MS$FIRST_FD_LIMIT" in *[!0-9]*) usage ;; esac

pool=pool-bench ns=terraform deploy=iac-agent-pool-bench
work=$(mktemp -d "${TMPDIR:-/tmp}/coordcycle.XXXXXX") || exit 1
stub_pid='' kube_pid='' coord_pid=''

stop() { # stop PID [SECONDS]: SIGTERM, SIGKILL after SECONDS (5)
    local p=$1 grace=${2:-5} i
    [ -n "$p" ] || return 0
    kill "$p" 2> /dev/null || return 0
    for ((i = 0; i < grace * 10; i++)); do kill -0 "$p" 2> /dev/null || break; sleep 0.1; done
    kill -9 "$p" 2> /dev/null
    wait "$p" 2> /dev/null
}
cleanup() {
    trap - EXIT
    trap '' INT TERM
    stop "$coord_pid"; stop "$kube_pid"; stop "$stub_pid" 20
    [ "${KEEP:-0}" = 1 ] && echo "coordcycle: scratch directory kept: $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "coordcycle: $*" >&2
    for f in statusstub kube-fake first coordinator; do
        [ -s "$work/$f.log" ] && { echo "--- last lines of the $f log" >&2; tail -n 5 "$work/$f.log" >&2; }
    done
    exit 1
}
say() { echo "coordcycle: $*" >&2; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
sleep_until() { local d=$(($1 - $(now_ms))); [ $d -le 0 ] || sleep "$(printf '%d.%03d' $((d / 1000)) $((d % 1000)))"; }
# Until MS (epoch ms), count the coordinator's open files every 10 ms — without a fork: `read -t` on a FIFO that
# nobody writes is the pause, the glob of /proc/PID/fd the count.
mkfifo "$work/nap" && exec 9<> "$work/nap" || exit 1
sample_until() {
    local t=${EPOCHREALTIME/./}
    while [ $((t / 1000)) -lt "$1" ]; do
        fd_sample
        read -r -t 0.01 -u 9 _
        t=${EPOCHREALTIME/./}
    done
}
wait_for() { # seconds command...: polls every 0.1 s
    local limit=$1 i
    shift
    for ((i = 0; i < limit * 10; i++)); do "$@" && return 0; sleep 0.1; done
    return 1
}
get() { curl -fsS --max-time 10 "$@"; }

# ---- the stub: every pod's agent --------------------------------------------------------------------------------
cmd_stub="$BUILD/bench/statusstub --first 127.0.1.1 --count $PODS --port 0 --ready-file \$TMP/stub.json --name-prefix $deploy- --pool-id $pool"
say "\$ $cmd_stub"
"$BUILD/bench/statusstub" --first 127.0.1.1 --count "$PODS" --port 0 --ready-file "$work/stub.json" \
    --name-prefix "$deploy-" --pool-id "$pool" > "$work/statusstub.log" 2>&1 &
stub_pid=$!
wait_for 60 test -s "$work/stub.json" || fail "statusstub did not start"
agent_port=$(grep -o '"port":[0-9]*' "$work/stub.json" | cut -d: -f2)
grep -o '"127\.[0-9.]*"' "$work/stub.json" | tr -d '"' > "$work/addresses"
[ "$(wc -l < "$work/addresses")" -eq "$PODS" ] || fail "statusstub listed $(wc -l < "$work/addresses") addresses"

# ---- kube-fake: the Deployment and its pods, shaped like the chart's (env, probes, volumes, managedFields) -------
labels="\"app.kubernetes.io/name\":\"iac-agent\",\"app.kubernetes.io/instance\":\"bench\",\"app.kubernetes.io/component\":\"agent\",\"pool-id\":\"$pool\""
podspec="{\"automountServiceAccountToken\":false,\"terminationGracePeriodSeconds\":930,
 \"securityContext\":{\"runAsNonRoot\":true,\"runAsUser\":10001,\"fsGroup\":10001,\"seccompProfile\":{\"type\":\"RuntimeDefault\"}},
 \"containers\":[{\"name\":\"agent\",\"image\":\"ghcr.io/example/iac-agent:0.1.0\",\"imagePullPolicy\":\"IfNotPresent\",
  \"securityContext\":{\"allowPrivilegeEscalation\":false,\"readOnlyRootFilesystem\":true,\"capabilities\":{\"drop\":[\"ALL\"]}},
  \"env\":[{\"name\":\"IAC_AGENT_NAME\",\"valueFrom\":{\"fieldRef\":{\"apiVersion\":\"v1\",\"fieldPath\":\"metadata.name\"}}},
   {\"name\":\"IAC_API_ENDPOINT\",\"value\":\"terranova.example.com\"},{\"name\":\"IAC_AGENT_PROTOCOL\",\"value\":\"https\"},
   {\"name\":\"SERVER_PORT\",\"value\":\"443\"},{\"name\":\"IAC_AGENT_TOKEN_FILE\",\"value\":\"/var/run/iac-agent/token/token\"},
   {\"name\":\"IAC_AGENT_SLOTS\",\"value\":\"4\"},{\"name\":\"IAC_AGENT_DATA_DIR\",\"value\":\"/var/lib/iac-agent\"},
   {\"name\":\"IAC_AGENT_LISTEN\",\"value\":\"0.0.0.0:$agent_port\"},{\"name\":\"IAC_AGENT_TASK_TIMEOUT\",\"value\":\"3600s\"},
   {\"name\":\"IAC_AGENT_DRAIN_TIMEOUT\",\"value\":\"900s\"},{\"name\":\"IAC_AGENT_CANCEL_GRACE\",\"value\":\"20s\"},
   {\"name\":\"IAC_AGENT_RESERVATION_TTL\",\"value\":\"24h\"},{\"name\":\"IAC_AGENT_LOG_FORMAT\",\"value\":\"json\"},
   {\"name\":\"IAC_AGENT_LOG_LEVEL\",\"value\":\"info\"}],
  \"ports\":[{\"name\":\"status\",\"containerPort\":$agent_port,\"protocol\":\"TCP\"}],
  \"livenessProbe\":{\"httpGet\":{\"path\":\"/healthz\",\"port\":\"status\",\"scheme\":\"HTTP\"},\"periodSeconds\":10,\"timeoutSeconds\":2,\"failureThreshold\":3,\"successThreshold\":1},
  \"readinessProbe\":{\"httpGet\":{\"path\":\"/readyz\",\"port\":\"status\",\"scheme\":\"HTTP\"},\"periodSeconds\":5,\"timeoutSeconds\":2,\"failureThreshold\":2,\"successThreshold\":1},
  \"resources\":{\"requests\":{\"cpu\":\"250m\",\"memory\":\"256Mi\"},\"limits\":{\"memory\":\"2Gi\"}},
  \"volumeMounts\":[{\"name\":\"data\",\"mountPath\":\"/var/lib/iac-agent\"},{\"name\":\"tmp\",\"mountPath\":\"/tmp\"},
   {\"name\":\"token\",\"mountPath\":\"/var/run/iac-agent/token\",\"readOnly\":true}],
  \"terminationMessagePath\":\"/dev/termination-log\",\"terminationMessagePolicy\":\"File\"}],
 \"volumes\":[{\"name\":\"data\",\"emptyDir\":{\"sizeLimit\":\"20Gi\"}},{\"name\":\"tmp\",\"emptyDir\":{}},
  {\"name\":\"token\",\"secret\":{\"secretName\":\"iac-agent-token-bench\",\"items\":[{\"key\":\"token\",\"path\":\"token\"}],\"defaultMode\":420}}],
 \"restartPolicy\":\"Always\",\"dnsPolicy\":\"ClusterFirst\",\"schedulerName\":\"default-scheduler\",\"serviceAccountName\":\"default\"}"
podspec=$(tr -d '\n' <<< "$podspec")
since=$(date -u -d '-2 hours' +%Y-%m-%dT%H:%M:%SZ)
{
    printf '{"items":[{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"%s","namespace":"%s","labels":{%s}},' \
        "$deploy" "$ns" "$labels"
    printf '"spec":{"replicas":%d,"selector":{"matchLabels":{%s}},"template":{"metadata":{"labels":{%s}},"spec":%s}}}' \
        "$PODS" "$labels" "$labels" "$podspec"
    awk -v deploy="$deploy" -v ns="$ns" -v labels="$labels" -v spec="$podspec" -v t="$since" '{
        name = sprintf("%s-%04d", deploy, NR - 1)
        printf ",\n{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\",", name, ns
        printf "\"labels\":{%s,\"pod-template-hash\":\"6c9f8d7b5d\"},", labels
        printf "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"%s-6c9f8d7b5d\",", deploy
        printf "\"uid\":\"3f9e2a4c-8d1b-4e6f-9a7c-5b2d1e0f4a3c\",\"controller\":true,\"blockOwnerDeletion\":true}],"
        printf "\"managedFields\":[{\"manager\":\"kube-controller-manager\",\"operation\":\"Update\",\"apiVersion\":\"v1\",\"time\":\"%s\",", t
        printf "\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:metadata\":{\"f:generateName\":{},\"f:labels\":{\".\":{},\"f:app.kubernetes.io/component\":{},"
        printf "\"f:app.kubernetes.io/instance\":{},\"f:app.kubernetes.io/name\":{},\"f:pod-template-hash\":{},\"f:pool-id\":{}},"
        printf "\"f:ownerReferences\":{\".\":{},\"k:{\\\"uid\\\":\\\"3f9e2a4c-8d1b-4e6f-9a7c-5b2d1e0f4a3c\\\"}\":{}}},\"f:spec\":{\"f:containers\":{\"k:{\\\"name\\\":\\\"agent\\\"}\":{\".\":{},"
        printf "\"f:env\":{},\"f:image\":{},\"f:livenessProbe\":{},\"f:ports\":{},\"f:readinessProbe\":{},\"f:resources\":{},\"f:volumeMounts\":{}}},"
        printf "\"f:volumes\":{}}}},{\"manager\":\"kubelet\",\"operation\":\"Update\",\"apiVersion\":\"v1\",\"time\":\"%s\",\"fieldsType\":\"FieldsV1\",", t
        printf "\"subresource\":\"status\",\"fieldsV1\":{\"f:status\":{\"f:conditions\":{},\"f:containerStatuses\":{},\"f:hostIP\":{},\"f:phase\":{},"
        printf "\"f:podIP\":{},\"f:podIPs\":{},\"f:startTime\":{}}}}]},"
        printf "\"spec\":%s,", spec
        printf "\"status\":{\"phase\":\"Running\",\"hostIP\":\"127.0.0.1\",\"podIP\":\"%s\",\"podIPs\":[{\"ip\":\"%s\"}],\"startTime\":\"%s\",", $1, $1, t
        printf "\"conditions\":[{\"type\":\"PodReadyToStartContainers\",\"status\":\"True\",\"lastProbeTime\":null,\"lastTransitionTime\":\"%s\"},", t
        printf "{\"type\":\"Initialized\",\"status\":\"True\",\"lastProbeTime\":null,\"lastTransitionTime\":\"%s\"},", t
        printf "{\"type\":\"Ready\",\"status\":\"True\",\"lastProbeTime\":null,\"lastTransitionTime\":\"%s\"},", t
        printf "{\"type\":\"ContainersReady\",\"status\":\"True\",\"lastProbeTime\":null,\"lastTransitionTime\":\"%s\"},", t
        printf "{\"type\":\"PodScheduled\",\"status\":\"True\",\"lastProbeTime\":null,\"lastTransitionTime\":\"%s\"}],", t
        printf "\"containerStatuses\":[{\"name\":\"agent\",\"state\":{\"running\":{\"startedAt\":\"%s\"}},\"lastState\":{},", t
        printf "\"ready\":true,\"restartCount\":0,\"image\":\"ghcr.io/example/iac-agent:0.1.0\",\"imageID\":\"ghcr.io/example/iac-agent@sha256:"
        printf "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945\",\"containerID\":\"containerd://%064d\",\"started\":true}],", NR
        printf "\"qosClass\":\"Burstable\"}}"
    }' "$work/addresses"
    printf '\n]}\n'
} > "$work/seed.json"

kube_token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
cmd_kube="$BUILD/kube-fake --no-kubelet --listen 127.0.0.1 --port 0 --ready-file \$TMP/kube-fake.json --token … --seed \$TMP/seed.json --work-dir \$TMP/kube --log-level warn"
say "\$ $cmd_kube   (seed: 1 Deployment, $PODS Pods, $(($(wc -c < "$work/seed.json") / 1024)) KiB)"
"$BUILD/kube-fake" --no-kubelet --listen 127.0.0.1 --port 0 --ready-file "$work/kube-fake.json" --token "$kube_token" \
    --seed "$work/seed.json" --work-dir "$work/kube" --log-level warn > "$work/kube-fake.log" 2>&1 &
kube_pid=$!
wait_for 60 test -s "$work/kube-fake.json" || fail "kube-fake did not start"
kube="http://127.0.0.1:$(grep -o '"port":[0-9]*' "$work/kube-fake.json" | cut -d: -f2)"
podlist_kib=$(($(get -H "Authorization: Bearer $kube_token" "$kube/api/v1/namespaces/$ns/pods" | wc -c) / 1024))

cat > "$work/kubeconfig" << EOF
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
    user: bench
    namespace: $ns
current-context: kube-fake
users:
- name: bench
  user:
    token: $kube_token
EOF
cat > "$work/pools.json" << EOF
{"pools": [{"id": "$pool", "namespace": "$ns", "deployment": "$deploy", "agent_port": $agent_port,
            "slots_per_pod": 4, "min_replicas": $PODS, "max_replicas": $PODS, "headroom": {"slot0": 1, "plan": 1},
            "scale_up_window": "0s", "scale_down_window": "5m", "max_remove_per_cycle": 1,
            "pod_startup_timeout": "5m"}]}
EOF

# ---- the coordinators ---------------------------------------------------------------------------------------------
# start_coord NAME FD_LIMIT: an iac-coordinator with that soft limit on open files, its log in $work/NAME.log.
start_coord() {
    CMD_COORD="ulimit -Sn $2; $BUILD/iac-coordinator --config \$TMP/pools.json --kubeconfig \$TMP/kubeconfig --listen 127.0.0.1:0 --cycle ${CYCLE_MS}ms --leader-elect=false --identity bench"
    say "\$ $CMD_COORD"
    (
        ulimit -Sn "$2" || exit 1
        exec "$BUILD/iac-coordinator" --config "$work/pools.json" --kubeconfig "$work/kubeconfig" \
            --listen 127.0.0.1:0 --cycle "${CYCLE_MS}ms" --leader-elect=false --identity bench
    ) > "$work/$1.log" 2>&1 &
    coord_pid=$! log=$work/$1.log
    wait_for 30 coord_up || fail "iac-coordinator did not start"
    coord="http://127.0.0.1:$(sed -n 's/.* API on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | sed -n 1p)"
    FD_PEAK=0
}
coord_up() { grep -q ' API on 127\.0\.0\.1:[0-9]' "$log"; }
kib() { awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$coord_pid/status"; }
fd_sample() { local f=("/proc/$coord_pid/fd/"*); [ ${#f[@]} -le "$FD_PEAK" ] || FD_PEAK=${#f[@]}; }

# metrics: M_CYCLES and M_MS (the last finished cycle's duration) from /metrics.
metrics() {
    local m
    m=$(curl -fsS --max-time 5 "$coord/metrics") || return 1
    M_CYCLES=$(awk '/^iac_pool_cycles_total\{/ { print $2 }' <<< "$m")
    M_MS=$(awk '/^iac_pool_cycle_duration_seconds\{/ { printf "%.0f", $2 * 1000 }' <<< "$m")
    [ -n "$M_CYCLES" ] && [ -n "$M_MS" ]
}
# next_cycle PREV: polls /metrics every 15 ms until a cycle after PREV has started; T_START is when it was seen.
next_cycle() {
    local limit=$(($(now_ms) + 3 * CYCLE_MS + 10000))
    while [ "$(now_ms)" -lt $limit ]; do
        fd_sample
        if metrics && [ "$M_CYCLES" -gt "$1" ]; then T_START=$(now_ms); return 0; fi
        kill -0 "$coord_pid" 2> /dev/null || fail "iac-coordinator exited"
        sleep 0.015
    done
    fail "no cycle started for $((3 * CYCLE_MS + 10000)) ms after cycle $1"
}
count() { grep -o "$1" "$work/pools.out" | wc -l; }
# check_view N: GET /v1/pools once cycle N is over; VIEW_OK=1 when it shows that cycle N saw the whole pool and
# patched nothing (the cost_patches counter is where the previous view left it). VIEW_AT: when it was asked.
check_view() {
    VIEW_AT=$(now_ms) VIEW_OK=0 VIEW_WHY=''
    get "$coord/v1/pools" > "$work/pools.out" || { VIEW_WHY="GET /v1/pools failed"; return; }
    local cycles pods answered patches
    cycles=$(grep -o '"counters":{"cycles":[0-9]*' "$work/pools.out" | grep -o '[0-9]*$')
    patches=$(grep -o '"cost_patches":[0-9]*' "$work/pools.out" | grep -o '[0-9]*$')
    pods=$(count '"agent_error":') answered=$(count '"agent_state":"ready"')
    if [ "$cycles" != "$1" ]; then VIEW_WHY="the view is of cycle $cycles"
    elif [ "$pods" -ne "$PODS" ] || [ "$answered" -ne "$PODS" ]; then VIEW_WHY="$pods pods, $answered agents answered"
    elif ! grep -q '"cycle_error":null' "$work/pools.out"; then
        VIEW_WHY="cycle error $(grep -o '"cycle_error":"[^"]*' "$work/pools.out" | cut -c16-)"
    elif ! grep -q '"decision":{"reason":"steady"' "$work/pools.out"; then
        VIEW_WHY="decision $(grep -o '"decision":{"reason":"[^"]*' "$work/pools.out" | cut -c24-)"
    elif [ "$patches" != "${PATCHES:-$patches}" ]; then VIEW_WHY="$((patches - PATCHES)) deletion costs patched"
    else VIEW_OK=1; fi
    PATCHES=$patches
}

# ---- the first cycle of a coordinator new to the pool: it writes every pod's deletion cost ---------------------
# Measured apart, by a coordinator that runs until every cost is current (64 a cycle): the measured coordinator
# below has nothing to write.
start_coord first "$FIRST_FD_LIMIT"
cmd_first=$CMD_COORD
say "first cycle on $coord (open files ≤ $FIRST_FD_LIMIT)"
next_cycle 0
next_cycle 1
first_ms=$M_MS first_fds=$FD_PEAK first_hwm=$(kib VmHWM)
get "$coord/v1/pools" > "$work/pools.out" || fail "GET /v1/pools failed"
first_patches=$(grep -o '"cost_patches":[0-9]*' "$work/pools.out" | grep -o '[0-9]*$')
first_emfile=$(grep -c 'errno 24\|Too many open files' "$log")
# The coordinator writes at most 64 deletion costs a cycle: let it run until they are all current (the counter
# stops moving), so that the measured coordinator has nothing to write.
c=$M_CYCLES last=-1
for _ in $(seq 40); do
    next_cycle "$c"; c=$M_CYCLES
    get "$coord/v1/pools" > "$work/pools.out" || fail "GET /v1/pools failed"
    p=$(grep -o '"cost_patches":[0-9]*' "$work/pools.out" | grep -o '[0-9]*$')
    [ "$p" = "$last" ] && break
    last=$p
done
[ "$p" = "$last" ] || fail "deletion costs still being written after 40 cycles"
stop "$coord_pid"; coord_pid=''

# ---- the measured coordinator: steady cycles, open files ≤ 1024 (a container's usual soft limit) ---------------
start_coord coordinator 1024
cmd_coord=$CMD_COORD
fd_limit=$(awk '/^Max open files/ { print $4 }' "/proc/$coord_pid/limits")
say "measured coordinator on $coord (cycle $CYCLE_MS ms, open files ≤ $fd_limit); $PODS pods, agents on port $agent_port"
next_cycle 0
next_cycle 1                       # cycles 1 and 2 are warm-up: first connections, first allocations
prev=$M_CYCLES start=$T_START
sleep_until $((start + CYCLE_MS * 3 / 4))
check_view "$prev"
[ "$VIEW_OK" = 1 ] || say "warm-up cycle $prev: $VIEW_WHY"

declare -a samples=() rss=()
skipped=0 unverified=0 FD_PEAK=0
tries=$((2 * REPEATS + 5))
while [ ${#samples[@]} -lt "$REPEATS" ] && [ $tries -gt 0 ]; do
    tries=$((tries - 1))
    sleep_until $((start + CYCLE_MS - 40))
    next_cycle "$prev"
    # Cycle `prev` is over and M_MS is its duration. Its view was read at VIEW_AT: after its end when VIEW_AT ≥ its
    # start (at most `start`, when it was seen) + its duration.
    if [ $((M_CYCLES - prev)) -ne 1 ]; then
        say "cycles $prev to $M_CYCLES ran between two reads: not counted"; skipped=$((skipped + 1))
    elif [ "$VIEW_OK" != 1 ] && [ "$VIEW_AT" -ge $((start + M_MS)) ]; then
        say "cycle $prev ($M_MS ms) not counted: $VIEW_WHY"; skipped=$((skipped + 1))
    elif [ "$prev" -ge 3 ]; then
        [ "$VIEW_AT" -ge $((start + M_MS)) ] || unverified=$((unverified + 1))
        samples+=("$M_MS")
    fi
    prev=$M_CYCLES start=$T_START
    sample_until $((start + CYCLE_MS * 3 / 4))
    check_view "$prev"
    rss+=("$(kib VmRSS)")
done

hwm=$(kib VmHWM) rss_now=$(kib VmRSS) fds_max=$FD_PEAK
stop "$coord_pid"; coord_pid=''
stop "$stub_pid" 20; stub_pid=''
answered=$(sed -n 's/.*answered \([0-9]*\) requests.*/\1/p' "$work/statusstub.log")
[ ${#samples[@]} -gt 0 ] || fail "no cycle could be counted"

for s in "${samples[@]}"; do echo "S coord.cycle_ms $s"; done
for r in "${rss[@]}"; do echo "S coord.rss_kib $r"; done
read -r med min max n <<< "$(printf '%s\n' "${samples[@]}" | sort -n |
    awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR], NR }')"
cat << EOF
V coord.pods $PODS
V coord.vmhwm_kib $hwm
V coord.vmrss_kib $rss_now
V coord.fds_max $fds_max
V coord.fd_limit $fd_limit
V coord.podlist_kib $podlist_kib
V coord.cycle_period_ms $CYCLE_MS
V coord.unverified $unverified
V coord.skipped $skipped
V coord.first_cycle_ms $first_ms
V coord.first_cycle_patches $first_patches
V coord.first_cycle_fds_max $first_fds
V coord.first_cycle_vmhwm_kib $first_hwm
V coord.first_cycle_emfile_lines $first_emfile
V coord.stub_requests ${answered:-0}
V coord.cmd_stub $cmd_stub
V coord.cmd_kube $cmd_kube
V coord.cmd_first $cmd_first
V coord.cmd $cmd_coord
coordcycle pods=$PODS cycles=$n median_ms=$med min_ms=$min max_ms=$max vmhwm_kib=$hwm vmrss_kib=$rss_now fds_max=$fds_max fd_limit=$fd_limit podlist_kib=$podlist_kib unverified=$unverified skipped=$skipped first_cycle_ms=$first_ms first_cycle_patches=$first_patches first_cycle_fds_max=$first_fds first_cycle_vmhwm_kib=$first_hwm first_cycle_emfile_lines=$first_emfile stub_requests=${answered:-0} cycle_period_ms=$CYCLE_MS
EOF
say "load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$n" -ge "$REPEATS" ]
