#!/usr/bin/env bash
# bench/run.sh — runs the benchmarks of issue 4 against a -O2 build and writes bench/README.md.
#
#   bench/run.sh BUILD_DIR [flags]          (make bench: bench/run.sh build/bench)
#
# Flags (defaults are the issue's numbers; QUICK=1 in the environment swaps in small ones for a smoke run):
#   --idle-secs N (60)  --idle-agents N (3)  --idle-https-agents N (3)   row 1: seconds idle, agents per protocol
#   --starts N (20)                                                      row 2: agent starts
#   --dispatch-tasks N (200)  --dispatch-repeats N (5)                   row 3: tasks (and baseline spawns) per run
#   --log-bytes N (1073741824)  --log-repeats N (3)                      row 4: engine output, repeats
#   --tput-tasks N (1000)  --tput-workspaces N (10)  --tput-repeats N (3) row 6
#   --floor-runs N (5)                                                   library floors (bench/floor.c)
#   --coord-repeats N (20)                                               row 5: coordinator cycles measured
#   --rows "1 2 3 4 5 6"                                                 which rows to run
#   --out FILE            where the report goes (default bench/README.md; with QUICK=1, BUILD_DIR/bench/README.quick.md)
#
# Every figure is the median of its samples with min and max beside it; baselines run in the same invocation.
# Run from the repository root. Nothing here fails the test suite: a row that cannot be measured is reported as such.
set -u

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 1 ] || usage
BUILD=$1; shift
[ -x "$BUILD/iac-agent" ] && [ -x "$BUILD/iac-devplane" ] && [ -x "$BUILD/fake-terraform" ] &&
    [ -x "$BUILD/bench/iacbench" ] || { echo "run.sh: $BUILD lacks the binaries (run make bench)" >&2; exit 1; }

IDLE_SECS=60 IDLE_AGENTS=3 IDLE_HTTPS=3 STARTS=20 DISPATCH=200 DISPATCH_REPEATS=5 LOG_BYTES=1073741824 LOG_REPEATS=3
TPUT_TASKS=1000 TPUT_WS=10 TPUT_REPEATS=3 FLOOR_RUNS=5 COORD_REPEATS=20 ROWS="1 2 3 4 5 6" OUT=bench/README.md
if [ "${QUICK:-0}" = 1 ]; then
    IDLE_SECS=10 IDLE_AGENTS=1 IDLE_HTTPS=1 STARTS=5 DISPATCH=20 DISPATCH_REPEATS=1 LOG_BYTES=67108864 LOG_REPEATS=1
    TPUT_TASKS=100 TPUT_REPEATS=1 FLOOR_RUNS=2 COORD_REPEATS=5 OUT=$BUILD/bench/README.quick.md
fi
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || usage
    case $1 in
        --idle-secs) IDLE_SECS=$2 ;; --idle-agents) IDLE_AGENTS=$2 ;; --idle-https-agents) IDLE_HTTPS=$2 ;;
        --starts) STARTS=$2 ;; --dispatch-tasks) DISPATCH=$2 ;; --dispatch-repeats) DISPATCH_REPEATS=$2 ;;
        --log-bytes) LOG_BYTES=$2 ;;
        --log-repeats) LOG_REPEATS=$2 ;; --tput-tasks) TPUT_TASKS=$2 ;; --tput-workspaces) TPUT_WS=$2 ;;
        --tput-repeats) TPUT_REPEATS=$2 ;; --floor-runs) FLOOR_RUNS=$2 ;; --rows) ROWS=$2 ;; --out) OUT=$2 ;;
        --coord-repeats) COORD_REPEATS=$2 ;;
        *) usage ;;
    esac
    shift 2
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/iac-bench.XXXXXX") || exit 1
RES=$TMP/results        # every S/V/M line of every program
: > "$RES"
KEEP_TMP=0
trap '[ $KEEP_TMP = 1 ] || rm -rf "$TMP"' EXIT
# Printed commands name the build directory as given and the scratch directory as $TMP.
declare -A CMD STATUS   # per row: the exact command(s), and why it could not be measured (unset: measured)

has_row() { case " $ROWS " in *" $1 "*) return 0 ;; esac; return 1; }

# run ROW DISPLAY-COMMAND COMMAND...: runs a measuring program, appends its stdout to the results.
run() {
    local row=$1 shown=$2; shift 2
    case $'\n'"${CMD[$row]:-}"$'\n' in
        *$'\n'"$shown"$'\n'*) ;; # a repeat: listed once
        *) CMD[$row]="${CMD[$row]:+${CMD[$row]}
}$shown" ;;
    esac
    echo "run.sh: row $row: $shown" >&2
    "$@" >> "$RES"
    local rc=$?
    if [ $rc -ne 0 ]; then
        STATUS[$row]="failed (exit status $rc; logs kept in the scratch directory)"
        KEEP_TMP=1
        echo "run.sh: row $row failed; scratch directory kept: $TMP" >&2
    fi
}

# latest_median KEY: the median of KEY's last DISPATCH samples (one run's).
latest_median() {
    grep "^S $1 " "$RES" | tail -n "$DISPATCH" | awk '{print $3}' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR) print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# run_ratio KEY BASE OUT: appends "S OUT r", r = the latest run's median of KEY over the latest run's of BASE.
run_ratio() {
    local a b
    a=$(latest_median "$1") b=$(latest_median "$2")
    [ -n "$a" ] && [ -n "$b" ] && awk -v a="$a" -v b="$b" -v k="$3" 'BEGIN { if (b > 0) printf "S %s %.4f\n", k, a / b }' >> "$RES"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START_S=$(date +%s)
IB="$BUILD/bench/iacbench"
if has_row 1; then
    run 1 "$BUILD/bench/iacbench idle --build $BUILD --tmp \$TMP --secs $IDLE_SECS --agents $IDLE_AGENTS --https-agents $IDLE_HTTPS" \
        "$IB" idle --build "$BUILD" --tmp "$TMP" --secs "$IDLE_SECS" --agents "$IDLE_AGENTS" --https-agents "$IDLE_HTTPS"
    for _ in $(seq "$FLOOR_RUNS"); do
        run floor "$BUILD/bench/floor   (× $FLOOR_RUNS)" "$BUILD/bench/floor"
    done
    CMD[floor]="$BUILD/bench/floor   (run $FLOOR_RUNS times)"
    # The idle heap by allocation site, when valgrind is installed (it is not a build dependency).
    if command -v valgrind > /dev/null; then
        run heap "$BUILD/bench/iacbench heap --build $BUILD --tmp \$TMP --valgrind \$(command -v valgrind)" \
            "$IB" heap --build "$BUILD" --tmp "$TMP" --valgrind "$(command -v valgrind)"
    fi
fi
if has_row 2; then
    run 2 "$BUILD/bench/iacbench start --build $BUILD --tmp \$TMP --runs $STARTS" \
        "$IB" start --build "$BUILD" --tmp "$TMP" --runs "$STARTS"
fi
if has_row 3; then
    # Repeated runs, each followed by its own baseline run, so that a disk's quiet or busy minute does not decide the
    # row: the samples of all runs are pooled, and each run's ratio to its baseline is kept as well.
    ABS=$(cd "$BUILD" && pwd)
    mkdir -p "$TMP/spawnbase"
    SHM_OK=0
    [ "$(stat -f -c %T /dev/shm 2> /dev/null)" = tmpfs ] && SHM_OK=1
    for _ in $(seq "$DISPATCH_REPEATS"); do
        run 3 "$BUILD/bench/iacbench dispatch --build $BUILD --tmp \$TMP --tasks $DISPATCH" \
            "$IB" dispatch --build "$BUILD" --tmp "$TMP" --tasks "$DISPATCH"
        # The same with the agent's data directory (the whole scratch directory of the run) on tmpfs: what of the
        # latency is the agent's own work and what is the disk's. Reported beside the row, never instead of it.
        if [ $SHM_OK = 1 ] && SHM_TMP=$(mktemp -d /dev/shm/iac-bench.XXXXXX); then
            run 3 "$BUILD/bench/iacbench dispatch --build $BUILD --tmp \$SHM_TMP --tasks $DISPATCH   # \$SHM_TMP: mktemp -d /dev/shm/iac-bench.XXXXXX" \
                bash -c 'set -o pipefail; "$@" | sed "s/^\([SV]\) dispatch\./\1 dispatch_tmpfs./"' run.sh \
                "$IB" dispatch --build "$BUILD" --tmp "$SHM_TMP" --tasks "$DISPATCH"
            rm -rf "$SHM_TMP"
        fi
        run 3 "$BUILD/bench/spawnbase $DISPATCH \$PWD/$BUILD/bench/tfstamp \$PWD/$BUILD/fake-terraform \$TMP/base-stamps \$TMP/spawnbase" \
            "$BUILD/bench/spawnbase" "$DISPATCH" "$ABS/bench/tfstamp" "$ABS/fake-terraform" "$TMP/base-stamps" "$TMP/spawnbase"
        run_ratio dispatch.agent_us dispatch.base_us dispatch.run_ratio
        run_ratio dispatch_tmpfs.agent_us dispatch.base_us dispatch_tmpfs.run_ratio
    done
fi
if has_row 4; then
    run 4 "$BUILD/bench/iacbench logpath --build $BUILD --tmp \$TMP --bytes $LOG_BYTES --repeats $LOG_REPEATS" \
        "$IB" logpath --build "$BUILD" --tmp "$TMP" --bytes "$LOG_BYTES" --repeats "$LOG_REPEATS"
fi
if has_row 5; then
    run 5 "bench/coordcycle.sh $BUILD $COORD_REPEATS" bench/coordcycle.sh "$BUILD" "$COORD_REPEATS"
fi
if has_row 6; then
    run 6 "$BUILD/bench/iacbench tput --build $BUILD --tmp \$TMP --tasks $TPUT_TASKS --workspaces $TPUT_WS --repeats $TPUT_REPEATS" \
        "$IB" tput --build "$BUILD" --tmp "$TMP" --tasks "$TPUT_TASKS" --workspaces "$TPUT_WS" --repeats "$TPUT_REPEATS"
fi

# Threads: does anything start one? With a numeric endpoint nothing does; with a DNS name, h1 (and libcurl's
# threaded resolver, for https) starts one per lookup, which ends with it. Counted with strace when it is installed (it is not a build dependency).
CLONES="not measured (strace is not installed)"
if has_row 1 && command -v strace > /dev/null; then
    mkdir -p "$TMP/clone-data" "$TMP/home"
    NAME=$(hostname)
    # strace starts `timeout`, which forks the agent: only clones with CLONE_THREAD are threads.
    env -i PATH=/usr/bin:/bin HOME="$TMP/home" IAC_API_ENDPOINT="$NAME" SERVER_PORT=9 CC_SERVER_PORT=9 \
        IAC_AGENT_TOKEN=apt_pool-dev_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef \
        IAC_AGENT_NAME=clones IAC_AGENT_DATA_DIR="$TMP/clone-data" IAC_AGENT_LISTEN=127.0.0.1:$((20000 + RANDOM % 20000)) \
        strace -f -qq -e trace=clone,clone3 -o "$TMP/clones" timeout -s TERM 2 "$BUILD/iac-agent" > /dev/null 2>&1
    N=$(grep -c 'CLONE_THREAD' "$TMP/clones" 2> /dev/null)
    CLONES="${N:-0} thread(s) started in 2 s by an agent whose IAC_API_ENDPOINT is a host name (the machine's own name; registration retried against a closed port), one per lookup and each gone with it; none with a numeric address"
    CMD[threads]="IAC_API_ENDPOINT=\$(hostname) SERVER_PORT=9 … strace -f -e trace=clone,clone3 timeout 2 $BUILD/iac-agent"
fi
END_S=$(date +%s)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- statistics -----------------------------------------------------------------------------------------------------

# stats KEY → "median min max n p99" of its samples, or empty.
stats() {
    grep "^S $1 " "$RES" | awk '{print $3}' | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) exit
            m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            r = int(0.99 * NR); if (r < 0.99 * NR) r++; if (r < 1) r = 1
            printf "%s %s %s %d %s\n", m, v[1], v[NR], NR, v[r]
        }'
}
fact() { grep "^V $1 " "$RES" | head -1 | cut -d' ' -f3-; }
field() { echo "$1" | cut -d' ' -f"$2"; }
# Formatting: f DIVISOR DECIMALS VALUE.
f() { [ -n "$3" ] && awk -v d="$1" -v p="$2" -v x="$3" 'BEGIN { printf "%.*f", p, x / d }' || printf '–'; }
# The median, min and max cells of KEY, scaled.
cells() {
    local s; s=$(stats "$1")
    if [ -z "$s" ]; then printf '– | – | –'; return; fi
    printf '%s | %s | %s' "$(f "$2" "$3" "$(field "$s" 1)")" "$(f "$2" "$3" "$(field "$s" 2)")" "$(f "$2" "$3" "$(field "$s" 3)")"
}
med() { field "$(stats "$1")" 1; }
# verdict VALUE le|ge LIMIT → met / MISSED / – (no value).
verdict() {
    [ -n "$1" ] || { printf '–'; return; }
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN { ok = op == "le" ? v <= l : v >= l; printf ok ? "met" : "**MISSED**" }'
}
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else printf "–" }' || printf '–'; }
unmeasured() {
    local out="" r
    for r in 1 floor heap 2 3 4 5 6; do [ -z "${STATUS[$r]:-}" ] || out="$out row $r ${STATUS[$r]};"; done
    echo "${out:- none.}"
}

# ---- the footprint breakdown: which library pulls in which mapping --------------------------------------------------

# group_of: for each library the agent maps, the part of the agent it belongs to. A library the agent links (libc,
# libuv, cJSON) counts there; libssl and libcrypto (dlopen'ed for wss, and also what libcurl's TLS uses) count
# together; one only libcurl or only libarchive needs counts as theirs (what dropping it would save); one both need
# is counted apart.
LIB_GROUPS=$TMP/groups
: > "$LIB_GROUPS"
closure() { ldd "$1" 2> /dev/null | awk '/=>/ { print $3 } /^\t\// { print $1 }' | xargs -r readlink -f; }
lib_path() { ldd "$BUILD/iac-agent" | awk -v n="$1" '$1 == n { print $3 }' | xargs -r readlink -f; }
# libcurl, libarchive and libssl are dlopen'ed, not linked (common/dynlib.h): found where the dynamic loader finds
# them.
dl_path() { ldconfig -p 2> /dev/null | awk -v n="$1" '$1 == n { print $NF; exit }' | xargs -r readlink -f; }
if [ -x "$BUILD/iac-agent" ]; then
    CORE=$( { for l in libc.so.6 libuv.so.1 libcjson.so.1; do
                  p=$(lib_path "$l"); [ -n "$p" ] && { echo "$p"; closure "$p"; }; done; } | sort -u)
    TLSSET=$( { p=$(dl_path libssl.so.3); [ -n "$p" ] && { echo "$p"; closure "$p"; }; } | sort -u)
    CURLSET=$( { p=$(dl_path libcurl.so.4); [ -n "$p" ] && { echo "$p"; closure "$p"; }; } | sort -u)
    ARCHSET=$( { p=$(dl_path libarchive.so.13); [ -n "$p" ] && { echo "$p"; closure "$p"; }; } | sort -u)
    for p in $( { closure "$BUILD/iac-agent"; echo "$TLSSET"; echo "$CURLSET"; echo "$ARCHSET"; } | sed '/^$/d' | sort -u); do
        if grep -qxF "$p" <<< "$CORE"; then
            case $p in
                */libc.so*|*/ld-linux*|*/libm.so*|*/libpthread*|*/libdl.so*) g="libc, ld.so" ;;
                */libuv.so*) g="libuv" ;;
                *) g="cJSON" ;;
            esac
        elif grep -qxF "$p" <<< "$TLSSET"; then g="libssl, libcrypto (dlopen'ed: wss, and libcurl's TLS)"
        elif grep -qxF "$p" <<< "$CURLSET" && grep -qxF "$p" <<< "$ARCHSET"; then g="needed by both libcurl and libarchive"
        elif grep -qxF "$p" <<< "$CURLSET"; then g="libcurl and what only it needs"
        elif grep -qxF "$p" <<< "$ARCHSET"; then g="libarchive and what only it needs"
        else g="other libraries"; fi
        printf '%s\t%s\n' "$p" "$g" >> "$LIB_GROUPS"
    done
fi

# maps_table MODE: the grouped breakdown of that idle agent's mappings (M lines) as table rows.
maps_table() {
    awk -v mode="$1" -v agent="$(readlink -f "$BUILD/iac-agent")" -F'\t' '
        FILENAME == ARGV[1] { g[$1] = $2; next }
        {
            split($0, w, " ")
            if (w[1] != "M" || w[2] != mode) next
            path = $0; sub(/^M [^ ]+ [^ ]+ [^ ]+ [^ ]+ /, "", path)
            if (path == agent) grp = "the iac-agent binary"
            else if (path ~ /^\[(heap|stack|anon)\]$/) grp = "heap, stack, anonymous mappings"
            else if (path in g) grp = g[path]
            else if (path ~ /^\[/) grp = "kernel ([vdso], [vvar])"
            else grp = "other mappings"
            rss[grp] += w[3]; pss[grp] += w[4]; anon[grp] += w[5]; n[grp]++; total += w[3]
        }
        END {
            for (k in rss) printf "%d\t%s\t%d\t%d\t%d\n", rss[k], k, anon[k], pss[k], n[k]
        }' "$LIB_GROUPS" "$RES" | sort -rn | awk -F'\t' '{ printf "| %s | %.2f | %.2f | %.2f | %d |\n", $2, $1 / 1024, $3 / 1024, $4 / 1024, $5 }'
}
top_maps() {
    awk -v mode="$1" '$1 == "M" && $2 == mode { p = $0; sub(/^M [^ ]+ [^ ]+ [^ ]+ [^ ]+ /, "", p); n = split(p, s, "/"); printf "%d\t%d\t%d\t%s\n", $3, $5, $4, s[n] }' "$RES" |
        sort -rn | head -"$2" | awk -F'\t' '{ printf "| %s | %d | %d | %d |\n", $4, $1, $2, $3 }'
}
maps_total() { awk -v mode="$1" '$1 == "M" && $2 == mode { r += $3; a += $5 } END { printf "%d %d", r, a }' "$RES"; }

# heap_table: the heap of the idle agent at its last massif snapshot before the stop, by the object that called
# malloc (a library's own allocations; what a library allocates through another one counts for the callee).
HEAP_TOTAL=""
heap_table() {
    local file stop
    file=$(fact heap.massif); stop=$(fact heap.stop_ms)
    [ -n "$file" ] && [ -f "$file" ] || return
    awk -v stop="$stop" '
        /^snapshot=/ { snap = substr($0, 10) }
        /^time=/ { t = substr($0, 6) + 0 }
        /^mem_heap_B=/ { heap = substr($0, 12) + 0 }
        /^heap_tree=/ { tree = substr($0, 11) }
        /^ n[0-9]+: / && (tree == "detailed" || tree == "peak") && t < stop - 300 {
            if (snap != cur) { cur = snap; delete by; total = heap }
            b = $2 + 0; what = $0
            if (match(what, /\(in [^)]*\)/)) { o = substr(what, RSTART + 4, RLENGTH - 5); n = split(o, p, "/"); o = p[n] }
            else if (what ~ /in [0-9]+ places/) o = "many sites, each under 0.5 %"
            else { sub(/^ n[0-9]+: [0-9]+ (0x[0-9A-Fa-f]+: )?/, "", what); o = what }
            by[o] += b
        }
        END { printf "TOTAL\t%d\n", total; for (o in by) printf "%d\t%s\n", by[o], o }' "$file"
}

# floor_table: each step of bench/floor.c with its RSS after, its own cost and its time.
FLOOR_STEPS="libc libuv lws_load lws_client_ctx lws_server_ctx cjson_load sha256_first openssl_init curl_load curl_global_init curl_multi_easy archive_load lws_tls_client_ctx"
declare -A FLOOR_WHAT=(
    [libc]="a program with libc only (the baseline)"
    [libuv]="dlopen libuv, uv_loop_init"
    [lws_load]="dlopen libwebsockets (brings libssl, libcrypto, libcap, libz)"
    [lws_client_ctx]="lws context: plain WebSocket client on the libuv loop (what wsc.c was)"
    [lws_server_ctx]="second lws context: status server listening (what https.c was)"
    [cjson_load]="dlopen libcjson — the core ends here"
    [sha256_first]="first SHA-256 through EVP: OpenSSL 3's default library context and provider"
    [openssl_init]="OPENSSL_init_ssl(LOAD_CONFIG) (after the above)"
    [curl_load]="dlopen libcurl (and the libraries it needs)"
    [curl_global_init]="curl_global_init(CURL_GLOBAL_DEFAULT)"
    [curl_multi_easy]="curl_multi_init + curl_easy_init"
    [archive_load]="dlopen libarchive (and the libraries it needs)"
    [lws_tls_client_ctx]="a TLS lws client context (what wss adds: SSL_CTX, system CA store)"
)
floor_table() {
    local prev="" s rss anon us prss panon
    for st in $FLOOR_STEPS; do
        rss=$(med "floor.$st.rss_kib"); anon=$(med "floor.$st.anon_kib"); us=$(med "floor.$st.us")
        [ -n "$rss" ] || continue
        if [ -n "$prev" ]; then
            prss=$(med "floor.$prev.rss_kib"); panon=$(med "floor.$prev.anon_kib")
            d=$(awk -v a="$rss" -v b="$prss" 'BEGIN { printf "%+.2f", (a - b) / 1024 }')
            da=$(awk -v a="$anon" -v b="$panon" 'BEGIN { printf "%+.2f", (a - b) / 1024 }')
        else d="–"; da="–"; fi
        printf '| %s | %s | %s | %s | %s | %s |\n' "$st" "${FLOOR_WHAT[$st]}" "$(f 1024 2 "$rss")" "$d" "$da" "$(f 1000 2 "$us")"
        prev=$st
    done
}
floor_delta() { # floor_delta FROM TO: RSS MiB between the two steps' medians
    awk -v a="$(med "floor.$2.rss_kib")" -v b="$(med "floor.$1.rss_kib")" 'BEGIN { if (a == "" || b == "") printf "–"; else printf "%.2f", (a - b) / 1024 }'
}
floor_time() { # floor_time STEP...: summed median ms
    local t=0 x
    for st in "$@"; do x=$(med "floor.$st.us"); t=$(awk -v t="$t" -v x="${x:-0}" 'BEGIN { print t + x }'); done
    f 1000 2 "$t"
}

# ---- the report -------------------------------------------------------------------------------------------------------

MIB=1024
C5=$(med coord.cycle_ms) H5=$(fact coord.vmhwm_kib)
R1=$(med idle.http.rss_kib) C1=$(med idle.http.cpu_ms_per_min) T1=$(med idle.http.threads)
R2=$(med start.hb_us) D3=$(med dispatch.agent_us) B3=$(med dispatch.base_us) P3=$(field "$(stats dispatch.agent_us)" 5)
L4=$(med log.agent_mb_s) LB4=$(med log.cat_mb_s)
H4=$(stats log.hwm_kib | cut -d' ' -f3) M4=$(stats log.rss_task_max_kib | cut -d' ' -f3)
PEAK4=$(awk -v a="${H4:-}" -v b="${M4:-}" 'BEGIN { if (a == "" && b == "") exit; print (a > b ? a : b) }')
GROW4=$(awk -v a="$(stats log.rss_task_max_kib | cut -d' ' -f3)" -v b="$(stats log.rss_idle_kib | cut -d' ' -f2)" 'BEGIN { if (a != "" && b != "") print a - b }')
RATIO3=$(awk -v a="$D3" -v b="$B3" 'BEGIN { if (a != "" && b > 0) print a / b }')
RATIO4=$(awk -v a="$L4" -v b="$LB4" 'BEGIN { if (a != "" && b > 0) print a / b }')
HTTP_MAPS=$(maps_total http)
# The scratch directory's filesystem, for row 3: ext4's journal (journal_task names its thread, "<none>" without one).
SCRATCH_FS=$(findmnt -n -o SOURCE,FSTYPE,OPTIONS --target "$TMP" 2> /dev/null | awk '{ printf "%s (%s, mounted %s", $2, $1, $3 }')
if [ -n "$SCRATCH_FS" ]; then
    SCRATCH_DEV=$(findmnt -n -o SOURCE --target "$TMP" | sed 's#^/dev/##')
    case $(cat "/sys/fs/ext4/$SCRATCH_DEV/journal_task" 2> /dev/null) in
        '<none>') SCRATCH_FS="$SCRATCH_FS; no journal)" ;;
        '') SCRATCH_FS="$SCRATCH_FS)" ;;
        *) SCRATCH_FS="$SCRATCH_FS; journaled)" ;;
    esac
else
    SCRATCH_FS="an unknown filesystem"
fi
MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
[ -n "$MODEL" ] || MODEL=$(uname -m)
COMMIT=$(git rev-parse --short HEAD 2> /dev/null || echo unknown)
# (this report itself does not count: a rerun finds the previous one modified)
[ -n "$(git status --porcelain --untracked-files=no -- . ":(exclude)$OUT" 2> /dev/null)" ] &&
    COMMIT="$COMMIT with uncommitted changes"
QUICKNOTE=""
[ "${QUICK:-0}" = 1 ] && QUICKNOTE="**QUICK=1 smoke run: small repeat counts, figures not comparable with a full run.** "

mkdir -p "$(dirname "$OUT")"
{
cat << EOF
# Benchmarks

Written by \`bench/run.sh\` (\`make bench\`): every figure below was measured by the run described here; nothing is
edited by hand. ${QUICKNOTE}Each figure is the median of its samples, with min and max beside it; a baseline is
measured in the same run and the ratio is the agent's median over the baseline's.

* Machine: $(nproc) cores, $MODEL, Linux $(uname -r)
* Date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $COMMIT, build $BUILD (\`-O2\`, no sanitizers)
* Run time: $((END_S - START_S)) s. Load average (1, 5, 15 min) before: $LOAD_BEFORE; after: $LOAD_AFTER — a loaded
  machine inflates latencies and CPU figures; RSS is not affected.

## Results

| # | what | median | min | max | unit | baseline (median) | ratio | target | verdict |
|---|---|---|---|---|---|---|---|---|---|
| 1 | idle RSS, http (VmRSS after $IDLE_SECS s idle, 4 slots) | $(cells idle.http.rss_kib $MIB 2) | MiB | upstream Go agent 5.5 (quoted) | $(ratio "$R1" 5632) | ≤ 4.5 MiB | $(verdict "$R1" le 4608) |
| 1 | idle PSS, http (shared with the devplane and sibling agents) | $(cells idle.http.pss_kib $MIB 2) | MiB | | | report | |
| 1 | idle USS (private pages), http | $(cells idle.http.uss_kib $MIB 2) | MiB | | | report | |
| 1 | idle CPU, http (schedstat run time) | $(cells idle.http.cpu_ms_per_min 1 3) | ms/min | upstream ≈ 4 (quoted) | $(ratio "$C1" 4) | ≤ 2 ms/min | $(verdict "$C1" le 2) |
| 1 | wake-ups, http (schedstat timeslices) | $(cells idle.http.wakeups_per_min 1 1) | per min | | | report | |
| 1 | threads, http | $(cells idle.http.threads 1 0) | | upstream 7 (quoted) | | 1 | $(verdict "$T1" le 1) |
| 1 | idle RSS, https (TLS proxy in front of the devplane) | $(cells idle.https.rss_kib $MIB 2) | MiB | | | report | |
| 1 | idle CPU, https | $(cells idle.https.cpu_ms_per_min 1 3) | ms/min | | | report | |
| 1 | threads, https | $(cells idle.https.threads 1 0) | | | | report | |
| 2 | start → first heartbeat received by the devplane | $(cells start.hb_us 1000 2) | ms | upstream Go agent 4.75 (quoted) | $(ratio "$R2" 4750) | ≤ 2.5 ms | $(verdict "$R2" le 2500) |
| 2 | … of which start → registration received | $(cells start.register_us 1000 2) | ms | | | | |
| 2 | … of which registration → first heartbeat | $(cells start.register_to_hb_us 1000 2) | ms | | | | |
| 2 | exec of \`iac-agent --version\` (loading only) | $(cells start.exec_agent_version_us 1000 2) | ms | libc-only program: $(f 1000 2 "$(med start.exec_libc_only_us)") | $(ratio "$(med start.exec_agent_version_us)" "$(med start.exec_libc_only_us)") | | |
| 3 | dispatch: run_task sent → engine exec'd | $(cells dispatch.agent_us 1000 2) | ms | bare libuv spawn: $(f 1000 2 "$B3") | $(ratio "$D3" "$B3") | ≤ 5 ms, ≤ 2× | $(verdict "$D3" le 5000), $(verdict "$RATIO3" le 2) |
| 3 | dispatch p99 ($(field "$(stats dispatch.agent_us)" 4) tasks) | $(f 1000 2 "$P3") | | | ms | baseline p99: $(f 1000 2 "$(field "$(stats dispatch.base_us)" 5)") | | ≤ 20 ms | $(verdict "$P3" le 20000) |
| 3 | one durable small-file write here (write, fsync, rename, fsync of the directory) | $(cells dispatch.atomic_write_us 1000 2) | ms | | | report | |
| 3 | … run by run: each run's median over its own baseline run's ($DISPATCH_REPEATS runs of $DISPATCH tasks) | $(cells dispatch.run_ratio 1 2) | × | | | report | |
| 3 | dispatch with the agent's data directory on tmpfs (/dev/shm), not the disk | $(cells dispatch_tmpfs.agent_us 1000 2) | ms | bare libuv spawn: $(f 1000 2 "$B3") | $(ratio "$(med dispatch_tmpfs.agent_us)" "$B3") | report | |
| 3 | … run by run, on tmpfs | $(cells dispatch_tmpfs.run_ratio 1 2) | × | | | report | |
| 4 | log path: engine output through the agent | $(cells log.agent_mb_s 1 0) | MB/s | \`cat\` to a file: $(f 1 0 "$LB4") | $(ratio "$L4" "$LB4") | ≥ 200 MB/s, ≥ 0.5× | $(verdict "$L4" ge 200), $(verdict "$RATIO4" ge 0.5) |
| 4 | peak RSS over the whole task (max of VmHWM and 20 ms samples) | $(f $MIB 2 "$PEAK4") | | | MiB | | | ≤ 16 MiB | $(verdict "$PEAK4" le 16384) |
| 4 | RSS growth over idle during the task ($(f 1048576 0 "$LOG_BYTES") MiB of output) | $(f $MIB 2 "$GROW4") | | | MiB | | | flat (< 1 MiB) | $(verdict "$GROW4" le 1024) |
| 5 | coordinator cycle: list, scrape, decide ($(fact coord.pods) pods, their agents answered by one stub) | $(cells coord.cycle_ms 1 0) | ms | | | ≤ 500 ms | $(verdict "$C5" le 500) |
| 5 | coordinator RSS (VmHWM after the measured cycles; open files ≤ $(fact coord.fd_limit), peak $(fact coord.fds_max)) | $(f $MIB 2 "$H5") | | | MiB | | | ≤ 32 MiB | $(verdict "$H5" le 32768) |
| 5 | first cycle of a coordinator new to the pool ($(fact coord.first_cycle_patches) deletion costs written, at most 64 a cycle; $(fact coord.first_cycle_fds_max) open files at the peak) | $(f 1 0 "$(fact coord.first_cycle_ms)") | | | ms | | | report | |
| 6 | throughput: $TPUT_TASKS plan tasks, one agent, 4 slots | $(cells tput.tasks_per_s 1 1) | tasks/s | | | report | |
| 6 | a task's time in its slot (agent log) | $(cells tput.task_ms 1 1) | ms | | | report | |
| 6 | a freed slot idle until the next run_task (agent log) | $(cells tput.slot_idle_ms 1 1) | ms | | | report | |
| 6 | CPU per task: agent / engine processes / devplane | $(f 1 2 "$(med tput.agent_cpu_ms_per_task)") / $(f 1 2 "$(med tput.engine_cpu_ms_per_task)") / $(f 1 2 "$(med tput.devplane_cpu_ms_per_task)") | | | ms | | | report | |

Rows that could not be measured:$(unmeasured)

### Commands

Run from the repository root; \`\$TMP\` is a scratch directory (\`run.sh\` makes one with \`mktemp -d\`).

| row | command |
|---|---|
EOF
for r in 1 floor heap threads 2 3 4 5 6; do
    [ -n "${CMD[$r]:-}" ] || continue
    while IFS= read -r line; do printf '| %s | `%s` |\n' "$r" "$line"; done <<< "${CMD[$r]}"
done
for k in cmd_stub cmd_kube cmd_first cmd; do v=$(fact coord.$k); [ -n "$v" ] && printf '| 5 | `%s` |\n' "$v"; done
HEAP=$(heap_table)
HEAP_TOTAL=$(echo "$HEAP" | awk -F'\t' '$1 == "TOTAL" { print $2 }')
VMAS=$(med idle.http.mappings)
cat << EOF

## Where the idle footprint goes

An idle plain-http agent ($IDLE_SECS s after its first heartbeat) maps $(f 1024 2 "$(field "$HTTP_MAPS" 1)") MiB resident, of which
$(f 1024 2 "$(field "$HTTP_MAPS" 2)") MiB anonymous, in $(f 1 0 "$VMAS") mappings. Below, the first http agent's mappings summed per file and
grouped by the part of the agent that needs them. A library that a core part and libcurl both need counts in the
core; "RSS" includes pages shared with other processes; "anon" is private memory — in a library mapping, the
pages that relocations and writes copied.

| part | RSS MiB | anon MiB | PSS MiB | mappings |
|---|---|---|---|---|
$(maps_table http)

The largest single mappings (KiB):

| file | RSS | anon | PSS |
|---|---|---|---|
$(top_maps http 15)

Over https the agent is $(f 1024 2 "$(awk -v a="$(med idle.https.rss_kib)" -v b="$R1" 'BEGIN { if (a != "" && b != "") print a - b }')") MiB larger: libcurl and the libraries it brings, loaded for the first https request, then TLS contexts, the certificate store and session state:

| part | RSS MiB | anon MiB | PSS MiB | mappings |
|---|---|---|---|---|
$(maps_table https)
EOF
if [ -n "$HEAP_TOTAL" ]; then cat << EOF

The heap of an idle http agent ($(f 1024 0 "$HEAP_TOTAL") KiB; valgrind massif, last snapshot before the stop), by the object that
called malloc:

| allocated by | KiB |
|---|---|
$(echo "$HEAP" | awk -F'\t' '$1 != "TOTAL" { printf "%d\t%s\n", $1, $2 }' | sort -rn | awk -F'\t' '{ printf "| %s | %.1f |\n", $2, $1 / 1024 }')

What the agent holds at idle. Start-up allocations that are freed again (option and store parsing, the
registration's request and answer) are not in this table; the agent hands their pages back once start-up is over
(malloc_trim), so they do not stay resident in the [heap] mapping above.
EOF
else echo; echo "(The heap by allocation site needs valgrind, which is not installed.)"; fi
cat << EOF

### What each library costs (bench/floor.c, median of $FLOOR_RUNS runs)

Each step adds one piece to a program that starts with libc alone, with \`dlopen\` in the order the agent needs
them; the cost of a step is what the agent would save without it. RSS after the step, the step's own RSS and
anonymous cost, and its own time (loading, relocation, constructors, initialisation):

| step | what | RSS after, MiB | Δ RSS | Δ anon | time, ms |
|---|---|---|---|---|---|
$(floor_table)

* The issue's library stack (libuv, libwebsockets with the libssl and libcrypto it links, two lws contexts, cJSON)
  is $(f 1024 2 "$(med floor.cjson_load.rss_kib)") MiB. The agent links only libuv and cJSON: its status server, WebSocket client and plain-http client
  are its own (common/https.c, wsc.c, h1.c), so the lws steps of this table are what it no longer pays, and
  everything after them is optional for a plain-http agent at idle.
* libcurl: loading it costs $(floor_delta openssl_init curl_load) MiB and $(floor_time curl_load) ms; \`curl_global_init\` and a multi handle $(floor_delta curl_load curl_multi_easy) MiB more.
  Debian's libcurl $(fact floor.curl.version) ($(fact floor.curl.ssl)) pulls in gnutls, nettle, krb5, ldap, rtmp, ssh2, nghttp2,
  idn2, psl, brotli, zstd…, and their constructors run when it is loaded. The agent does not link it: plain http
  goes through common/h1.c, and the first https request (or http request with \`http_proxy\` set) dlopens libcurl,
  so an https agent pays this (row 1, https) and a plain-http agent never does.
* OpenSSL 3's first use (library context and default provider: the first EVP digest, or \`curl_global_init\`'s
  \`OPENSSL_init_ssl\`) costs $(floor_delta cjson_load openssl_init) MiB and $(floor_time sha256_first openssl_init) ms. A plain-http agent never loads OpenSSL: its SHA-256 (an
  engine's checksum, the plan's hash), the WebSocket handshake's SHA-1 and base64 are plain C (common/digest.c).
* libarchive (used only to unpack a downloaded engine zip) costs $(floor_delta curl_multi_easy archive_load) MiB and $(floor_time archive_load) ms; it brings libxml2, ICU
  and libstdc++. The agent dlopens it the first time it unpacks an engine zip, never when IAC_ENGINE_PATH is set.
* Each lws context costs about $(floor_time lws_client_ctx) ms: lws 4.1.6 lists its library directory ($(ls /usr/lib/x86_64-linux-gnu 2> /dev/null | wc -l) entries
  here) for event-loop plugins and dlopens the libuv one, once per context. The agent has none.
* An lws TLS client context costs $(floor_time lws_tls_client_ctx) ms and $(floor_delta archive_load lws_tls_client_ctx) MiB, most of it parsing the system CA store. The agent's wss
  (common/tls.c) dlopens libssl and parses the CA store at its first wss connection, never over plain ws.
* Threads: $(med idle.http.threads) at idle. A host name is looked up on a thread that ends with the lookup (common/dial.c, for the HTTP
  client and the C&C WebSocket; libcurl's resolver, threaded_resolver=$(fact floor.curl.threaded_resolver), does the same for https): $CLONES.

## Method, row by row

**Row 1 — idle footprint.** \`iacbench idle\` starts one iac-devplane, $IDLE_AGENTS plain-http agents and $IDLE_HTTPS https agents
at once (each one is a repeat; 4 slots, a fresh data directory, the numeric endpoint 127.0.0.1), waits for each
one's first heartbeat, lets them settle 1 s, reads \`/proc/PID/schedstat\` and \`stat\`, waits $IDLE_SECS s and reads
them again with \`status\` (VmRSS, VmHWM, RssAnon, RssFile, Threads) and \`smaps_rollup\` (Pss, Private_*). CPU per
minute is the schedstat run-time difference (ns, kernel time included) scaled to a minute; wake-ups are
schedstat's timeslice count. The devplane has no TLS: for https, \`bench/tlsproxy\` terminates TLS in front of it (a
self-signed P-256 certificate for 127.0.0.1, which the agent trusts through SSL_CERT_FILE) and forwards the bytes to
the devplane's API and C&C ports, so the agent runs its real https (libcurl) and wss (common/wsc.c over common/tls.c) code. PSS is low because
the agents, the devplane and the measuring client map the same libraries; in a pod, where the agent is alone,
PSS ≈ RSS. USS (private pages) is the part no sharing can remove. The file-backed part of RSS also depends on the
page cache: on a fault the kernel maps the neighbouring pages that are already cached (fault-around), so the same
binary measures up to about 1 MiB apart between runs on a busy machine; the anonymous part does not move.
EOF
if [ -n "$R1" ] && [ "$(verdict "$R1" le 4608)" != met ]; then cat << EOF

*Missed: RSS.* $(f $MIB 2 "$R1") MiB against 4.5 MiB. The agent maps only libc, libuv and cJSON at idle over plain http (no
libcurl, libarchive, libssl, libcrypto or libwebsockets) and hands start-up's freed heap pages back; what remains
is those libraries' pages, the agent's binary (resident almost whole), its heap and stack (tables above). The
file-backed part depends on fault-around and the page cache (see the method); on a busy machine the same binary
measures up to about 1 MiB apart between runs.
EOF
fi
if [ -n "$C1" ] && [ "$(verdict "$C1" le 2)" != met ]; then cat << EOF

*Missed: CPU.* $(f 1 3 "$C1") ms/min against 2. Six heartbeats a minute, each reading and parsing /proc/meminfo (the
upstream mem_usage field), encoding and masking the frame and writing it (one write and one epoll_ctl call); on a
shared virtual machine the same work measures higher, and a run shorter than the issue's 60 s has few heartbeats
to average over.
EOF
fi
cat << EOF

**Row 2 — start to ready.** \`iacbench start\` starts the agent $STARTS times, one after another, against one devplane; the
child reads CLOCK_REALTIME just before \`execve\` (into memory shared with the parent), and the devplane stamps the
heartbeat it counts (\`last_ping_at\`, ns, from \`/admin/agents\`; \`registered_at\` likewise). The parent does not poll
during the first 150 ms, so the two cores belong to the agent and the devplane. Each agent is stopped with SIGTERM
and its row deleted before the next start. The same program times \`iac-agent --version\` (exec, dynamic loading,
option parsing, exit) against a libc-only program: the difference is what the dynamic loader spends on the
agent's $(ldd "$BUILD/iac-agent" 2> /dev/null | wc -l) shared objects before \`main\`.
EOF
if [ -n "$R2" ] && [ "$(verdict "$R2" le 2500)" != met ]; then cat << EOF

*Missed.* $(f 1000 2 "$R2") ms against 2.5 ms. Exec and dynamic loading alone take $(f 1000 2 "$(med start.exec_agent_version_us)") ms ($(f 1000 2 "$(med start.exec_libc_only_us)") ms for a libc-only
program). After \`main\` the agent listens (a socket bind), sends its registration, then fetches the registry
credentials and opens the WebSocket side by side, C&C messages waiting for the credentials ($(f 1000 2 "$(med start.register_to_hb_us)") ms from
registration to heartbeat). The rest is the devplane's answers and the scheduler on a loaded machine.
EOF
fi
cat << EOF

**Row 3 — dispatch latency.** \`iacbench dispatch\` runs $DISPATCH plan tasks one at a time through one agent whose engine is
\`bench/tfstamp\` (IAC_ENGINE_PATH): a libc-only wrapper that appends CLOCK_REALTIME (ns) to a file as its \`main\`
starts, then execs fake-terraform. Latency = tfstamp's stamp for the task's \`init\` − the devplane's \`started_at\`
(stamped in the dispatch pass just before \`run_task\` is queued on the socket); it includes the frame's delivery,
the bundle fetch (E3) and rendering. While a task starts the client waits in the kernel (inotify) for the stamp
file to grow and reads each new line once, so that it takes no CPU from the agent and the devplane; it then waits
for the task to finish (agent /metrics) before it creates the next. Baseline: \`bench/spawnbase\`, a bare libuv program
that \`uv_spawn\`s the same wrapper $DISPATCH times; latency = stamp − the clock read just before \`uv_spawn\`. The same run
times a durable small-file write on the scratch filesystem after each task (the "one durable small-file write"
row), so that both are measured under the same load. All of this is done $DISPATCH_REPEATS times in turn — the agent on the
disk, the agent on tmpfs, the baseline — because this disk's latency changes from one minute to the next: the
figures pool every run's tasks, and the "run by run" lines give each run's ratio to the baseline run beside it.

Between the frame and the exec the agent fetches the bundle (E3) over a connection kept from its previous request
to the plane (common/h1.c's pool: no connect, no accept), renames a spare work directory into place
(agent/workdir.c: made after the previous task's spawn, it holds the log file and the files nearly every render
writes as empty placeholders, so that no inode is allocated on this path), writes the task log's first lines and
fills the rendered files in place (no temporary file, no fsync: nothing reads them before the engine, and a crash
fails the task and removes its directory), and spawns the engine with posix_spawn (a vfork-style clone: the agent's
size does not matter). The slot's save and heartbeat and the next spare wait 2 ms after the spawn (executor.c,
exec_take and exec_settle, say why that is safe), so that they do not compete with the engine's start for the two
CPUs. Before these changes the same row measured 1.51 ms, 2.54× (commit 42d75e6): that competition and the
inode allocations were most of the difference — the scratch directory is on $SCRATCH_FS, and without a journal
ext4's allocator passes over every inode freed in the last minute or more on each create, while each task frees a
dozen when its work directory is removed (\`recently_deleted\` under \`ext4_create\` and \`ext4_mkdir\` was about
10 % of the CPU samples of the agent and its children in a \`perf record\` of this row then).
EOF
if [ -n "$D3" ] && { [ "$(verdict "$D3" le 5000)" != met ] || [ "$(verdict "$RATIO3" le 2)" != met ] || [ "$(verdict "$P3" le 20000)" != met ]; }; then cat << EOF

*Missed.* Median $(f 1000 2 "$D3") ms, p99 $(f 1000 2 "$P3") ms, $(ratio "$D3" "$B3") the bare spawn (run by run $(f 1 2 "$(field "$(stats dispatch.run_ratio)" 2)")–$(f 1 2 "$(field "$(stats dispatch.run_ratio)" 3)")×); with the data
directory on tmpfs the same agent takes $(f 1000 2 "$(med dispatch_tmpfs.agent_us)") ms, $(ratio "$(med dispatch_tmpfs.agent_us)" "$B3") (run by run $(f 1 2 "$(field "$(stats dispatch_tmpfs.run_ratio)" 2)")–$(f 1 2 "$(field "$(stats dispatch_tmpfs.run_ratio)" 3)")×). Look first at the
disk: a small-file create measured about 40 µs after a quiet minute and 130 µs right after a run of this row
here (the paragraph above says why). The spare work directories take the creates off this path, but a spare
that is not ready (a burst of more run_task frames than slots) or a data directory where a spare cannot be renamed
into place (another file system under it) puts them back. The \`discard\` option also makes each removal of a directory wait for the disk
(\`blkdev_issue_discard\` under \`rmdir\`). Then at the machine: the row's time is mostly hand-offs between
processes on two vCPUs (devplane → agent → devplane → agent → engine), each a wake-up of a halted vCPU.
EOF
fi
cat << EOF

**Row 4 — log path.** Each repeat of \`iacbench logpath\` gets a fresh agent whose engine prints
$(f 1 0 "$(awk -v b="$LOG_BYTES" 'BEGIN { print int(b / 100) }')") lines of exactly 100 bytes during \`plan\` (FAKE_TF_OUTPUT_LINES, FAKE_TF_OUTPUT_LINE_BYTES=99), through
\`bench/tfstamp\` in wait mode, which records when the engine started and exited. Throughput = bytes ÷ that time:
the engine's writes block on the pipe, so it exits only when the agent has taken all but one pipe buffer. The agent
writes the spill file and, for every line, asks whether the C&C queue would take a live frame: most lines find it
full (it is bounded, by design) and are counted as dropped without the frame being built.
RSS is sampled every 20 ms from \`/proc/PID/status\` over the whole task, which afterwards uploads the whole log twice
(E5, E6), streamed from the spill file; the devplane drains a body over 512 MiB and answers 413, so a 1 GiB log is
streamed but not stored. Baseline: the same wrapper and knobs printing into \`cat > file\` through a pipe.
EOF
if [ -n "$L4" ] && { [ "$(verdict "$L4" ge 200)" != met ] || [ "$(verdict "$RATIO4" ge 0.5)" != met ]; }; then cat << EOF

*Missed.* $(f 1 0 "$L4") MB/s, $(ratio "$L4" "$LB4") of \`cat\`. For every 100-byte line the agent still splits the line, appends it to
the spill buffer and the error extractor and asks the queue ($(f 1 0 "$(med log.live_frames_dropped)") frames dropped per repeat); \`cat\`
moves the bytes in large blocks. \`cat\`'s own rate swings widely on this machine (compare runs).
EOF
fi
cat << EOF

**Row 5 — coordinator cycle.** \`bench/coordcycle.sh\` starts \`bench/statusstub\` (one process, one libuv loop, a
common/https server on each of $(fact coord.pods) loopback addresses from 127.0.1.1, one port, each answering GET
/v1/status with its own agent's status in agent/status.c's shape: 4 slots, 11 of 20 pods idle, the others
planning, applying or holding slot 0 reserved), kube-fake \`--no-kubelet\` seeded with the Deployment and
$(fact coord.pods) pods shaped like the chart's, Running and Ready at the stub's addresses, and iac-coordinator
(\`--leader-elect=false\`, min = max = $(fact coord.pods) so the decision is steady, no demand URL, \`--cycle 2s\`,
open files ≤ $(fact coord.fd_limit)). A first coordinator runs until every pod's deletion cost is current (it writes
at most 64 a cycle), so the measured one has nothing to write. Each cycle reads the Deployment, lists the pods
($(fact coord.podlist_kib) KiB of JSON in all, read in pages of 100 with \`limit\`/\`continue\`, each page turned into compact rows
before the next is asked for), asks every agent (64 at a time) and decides. Its duration is
iac_pool_cycle_duration_seconds, read from /metrics as the next cycle starts; between cycles /v1/pools must show
every pod with its agent answered, no cycle error, decision steady and no new patch, or the cycle is not counted.
Cycles 1–2 are warm-up. RSS is VmHWM afterwards; open files are counted every 10 ms. kube-fake is reached over plain
http, so the coordinator never loads libcurl here; against a real API server (https) it does, which the same
benchmark measured at about 6 MiB more (19.1 MiB with libcurl carrying every request, before h1 existed).
$( [ "$(verdict "$H5" le 32768)" = met ] || echo "
*Missed: RSS.* $(f $MIB 1 "$H5") MiB against 32. The pods are listed in pages of 100 and each page is parsed into
compact rows (up to 4 slots inline) before the next: what is left is the libraries, the rows and the agents'
answers in flight (64 at a time)." )

**Row 6 — throughput.** \`iacbench tput\` starts a fresh devplane and agent per repeat ($TPUT_REPEATS), makes $TPUT_WS workspaces with one
resource each, queues $TPUT_TASKS plan tasks round-robin over them as fast as the admin API takes them, and waits until the agent
has finished them all. Tasks/s = tasks ÷ (last \`completed_at\` − first \`created_at\`, both devplane timestamps).
CPU per task is the difference of \`/proc/PID/stat\` over the run: utime+stime of the agent, of its reaped children
(cutime+cstime: the three fake-terraform runs of each task) and of the devplane. A task's time in its slot and how
long a freed slot waits for its next task come from the agent's log (millisecond stamps). Three of the four slots
take plans (slot 0 is kept for plan_and_apply), so at most three tasks run at once: tasks/s ≈ 3 ÷ (task time + idle
slot time) = $(awk -v t="$(med tput.task_ms)" -v i="$(med tput.slot_idle_ms)" 'BEGIN { if (t != "" && t + i > 0) printf "%.0f", 3000 / (t + i); else printf "–" }') here. A freed slot waits because the devplane places work by the slots of the last
heartbeat, and the agent sends the heartbeat that shows the free slot on the next loop turn; the rest is the devplane's round trip.
Tasks the agent rejected (the devplane had overfilled it between heartbeats) went back to the queue:
$(f 1 0 "$(med tput.rejections)") per run (median). CPU is not the limit: the agent, its engines and the devplane together use
$(awk -v a="$(med tput.agent_cpu_ms_per_task)" -v e="$(med tput.engine_cpu_ms_per_task)" -v d="$(med tput.devplane_cpu_ms_per_task)" -v r="$(med tput.tasks_per_s)" 'BEGIN { if (r != "") printf "%.0f", (a + e + d) * r / 10; else printf "–" }') % of one core per second of run time (of $(nproc) cores).
EOF
} > "$OUT"

echo "run.sh: report written to $OUT" >&2
sed -n '/^## Results/,/^### Commands/p' "$OUT" | sed '$d'
[ $KEEP_TMP = 0 ]
