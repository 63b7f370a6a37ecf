#!/usr/bin/env bash
# Fleet benchmark (not a test): castellan against ansible-playbook over SSH on a local fleet of N hosts
# (tests/fleet), the same 10-task "push TLS to PostgreSQL" flow, first run and no-change re-run.
#
# Usage:
#   benches/fleet.sh N                   castellan vs ansible-playbook on N hosts, forks = N for both
#   benches/fleet.sh --scale N FORKS     castellan only, N hosts, -f FORKS, a 3-task playbook
#                                        (file, copy, lineinfile): wall time, peak RSS, errors
#
# Environment (defaults keep it off the test suite's fleet):
#   CASTELLAN_FLEET_NET=9  CASTELLAN_FLEET_DIR=/tmp/castellan-bench-fleet
#   CASTELLAN_BENCH_DIR=/tmp/castellan-bench        playbook, certs, ansible.cfg, logs, control sockets
#   CASTELLAN_BENCH_VENV=/tmp/castellan-bench-venv  virtualenv with ansible-core (created if missing)
#   CARGO_TARGET_DIR                                where castellan is built (cargo's default otherwise)
# Needs root (the fleet runs sshd on port 22). The fleet is stopped on exit.
set -euo pipefail

usage() {
    echo "usage: $0 N | $0 --scale N FORKS" >&2
    exit 2
}
mode=compare
if [[ ${1:-} == --scale ]]; then
    mode=scale
    [[ $# -eq 3 && $2 =~ ^[0-9]+$ && $3 =~ ^[0-9]+$ ]] || usage
    N=$((10#$2))
    FORKS=$((10#$3))
else
    [[ $# -eq 1 && $1 =~ ^[0-9]+$ ]] || usage
    N=$((10#$1))
    FORKS=$N
fi
((N >= 1 && FORKS >= 1)) || usage

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CASTELLAN_FLEET_NET=${CASTELLAN_FLEET_NET:-9}
export CASTELLAN_FLEET_DIR=${CASTELLAN_FLEET_DIR:-/tmp/castellan-bench-fleet}
unset CASTELLAN_FLEET_INVENTORY
BENCH=${CASTELLAN_BENCH_DIR:-/tmp/castellan-bench}
VENV=${CASTELLAN_BENCH_VENV:-/tmp/castellan-bench-venv}
INVENTORY=$CASTELLAN_FLEET_DIR/inventory.yml
CTL=$BENCH/cp # ansible's ControlPersist sockets
LOGS=$BENCH/logs

log() { printf '== %s\n' "$*" >&2; }
die() {
    printf 'fleet.sh: %s\n' "$*" >&2
    exit 1
}

# Stop the ssh ControlMasters ansible left under $CTL (ControlPersist), then the fleet.
stop_masters() {
    local s pid n=0
    for s in "$CTL"/*; do
        [[ -S $s ]] || continue
        n=$((n + 1))
        ssh -o ControlPath="$s" -O exit bench >/dev/null 2>&1 || true
    done
    # Whatever did not answer -O exit: masters are titled "ssh: <control path> [mux]".
    while read -r pid; do
        kill "$pid" 2>/dev/null || true
    done < <(ps -e -o pid=,args= | awk -v dir="ssh: $CTL/" 'index($0, dir) { print $1 }')
    rm -f "$CTL"/* 2>/dev/null || true
    ((n == 0)) || log "stopped $n ansible ssh control masters under $CTL"
}
# shellcheck disable=SC2317 # called through the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_masters
    "$REPO/tests/fleet/down.sh" >&2 || true
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ $(id -u) == 0 ]] || die "must run as root (the fleet's sshd listen on port 22)"
command -v python3 >/dev/null || die "python3 is needed"
[[ -x /usr/bin/time ]] || {
    log "installing GNU time"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
}
mkdir -p "$BENCH" "$CTL" "$LOGS"
rm -f "$LOGS"/*

# --- castellan ----------------------------------------------------------------------------------
log "building castellan (release)"
(cd "$REPO" && cargo build --release -q)
CASTELLAN=${CARGO_TARGET_DIR:-$REPO/target}/release/castellan
[[ -x $CASTELLAN ]] || die "no binary at $CASTELLAN"

# --- ansible-core in a virtualenv ---------------------------------------------------------------
if [[ $mode == compare ]]; then
    if [[ ! -x $VENV/bin/ansible-playbook ]]; then
        log "installing ansible-core into $VENV"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q ansible-core
    fi
    ANSIBLE_VERSION=$("$VENV/bin/ansible-playbook" --version)
    ANSIBLE_VERSION=${ANSIBLE_VERSION%%$'\n'*}
fi

# --- fleet --------------------------------------------------------------------------------------
log "fleet of $N hosts (net $CASTELLAN_FLEET_NET, dir $CASTELLAN_FLEET_DIR)"
"$REPO/tests/fleet/up.sh" "$N" --no-postgres >&2
[[ -s $INVENTORY ]] || die "no inventory at $INVENTORY"

wipe_hosts() {
    local k
    for ((k = 1; k <= N; k++)); do rm -rf "$CASTELLAN_FLEET_DIR/hosts/db$k/root/pg"; done
}

# --- inputs: dummy certificates, playbooks, ansible.cfg -----------------------------------------
mkdir -p "$BENCH/certs"
for f in server.crt server.key root.crt; do
    [[ -s $BENCH/certs/$f ]] && continue
    kind=CERTIFICATE
    [[ $f == *.key ]] && kind="PRIVATE KEY"
    {
        echo "-----BEGIN $kind-----"
        head -c 1200 /dev/urandom | base64 -w 64
        echo "-----END $kind-----"
    } >"$BENCH/certs/$f.new"
    mv -f "$BENCH/certs/$f.new" "$BENCH/certs/$f"
done

# The 10-task flow: 1 directory + 3 copies + 4 lineinfile + 1 blockinfile + 1 handler.
# Plain `{{ var }}` expressions only: the same file is valid for castellan (tera) and Ansible (Jinja2).
cat >"$BENCH/pg-tls.yml" <<YML
- name: push TLS configuration to PostgreSQL hosts
  hosts: fleet
  tasks:
    - name: configuration directory
      file:
        path: "{{ fleet_root }}/pg"
        state: directory
        owner: postgres
        group: postgres
        mode: "0700"

    - name: server certificate
      copy: {src: "$BENCH/certs/server.crt", dest: "{{ fleet_root }}/pg/server.crt", owner: postgres, group: postgres, mode: "0600"}
      notify: reload postgresql

    - name: server key
      copy: {src: "$BENCH/certs/server.key", dest: "{{ fleet_root }}/pg/server.key", owner: postgres, group: postgres, mode: "0600"}
      notify: reload postgresql

    - name: root certificate
      copy: {src: "$BENCH/certs/root.crt", dest: "{{ fleet_root }}/pg/root.crt", owner: postgres, group: postgres, mode: "0600"}
      notify: reload postgresql

    - name: ssl on
      lineinfile: {path: "{{ fleet_root }}/pg/postgresql.conf", regexp: "^#?ssl\\\\s*=", line: "ssl = on", create: yes, owner: postgres, group: postgres, mode: "0600"}
      notify: reload postgresql

    - name: ssl_cert_file
      lineinfile: {path: "{{ fleet_root }}/pg/postgresql.conf", regexp: "^#?ssl_cert_file\\\\s*=", line: "ssl_cert_file = '{{ fleet_root }}/pg/server.crt'", create: yes}
      notify: reload postgresql

    - name: ssl_key_file
      lineinfile: {path: "{{ fleet_root }}/pg/postgresql.conf", regexp: "^#?ssl_key_file\\\\s*=", line: "ssl_key_file = '{{ fleet_root }}/pg/server.key'", create: yes}
      notify: reload postgresql

    - name: ssl_ca_file
      lineinfile: {path: "{{ fleet_root }}/pg/postgresql.conf", regexp: "^#?ssl_ca_file\\\\s*=", line: "ssl_ca_file = '{{ fleet_root }}/pg/root.crt'", create: yes}
      notify: reload postgresql

    - name: certificate-only access
      blockinfile:
        path: "{{ fleet_root }}/pg/pg_hba.conf"
        create: yes
        owner: postgres
        group: postgres
        mode: "0600"
        block: |
          hostssl all all 0.0.0.0/0 cert clientcert=verify-full
          hostssl all all ::/0      cert clientcert=verify-full
      notify: reload postgresql

  handlers:
    - name: reload postgresql
      command: touch {{ fleet_root }}/pg/reloaded
YML

# Acceptance 5: a simple 3-task playbook.
cat >"$BENCH/simple.yml" <<YML
- name: simple push
  hosts: fleet
  tasks:
    - name: directory
      file: {path: "{{ fleet_root }}/pg", state: directory, mode: "0700"}
    - name: certificate
      copy: {src: "$BENCH/certs/server.crt", dest: "{{ fleet_root }}/pg/server.crt", mode: "0600"}
    - name: ssl on
      lineinfile: {path: "{{ fleet_root }}/pg/postgresql.conf", regexp: "^#?ssl\\\\s*=", line: "ssl = on", create: yes, mode: "0600"}
YML

cat >"$BENCH/ansible.cfg" <<CFG
# Written by benches/fleet.sh: Ansible at its fastest settings for a fair comparison.
[defaults]
forks = $FORKS
gathering = explicit
host_key_checking = True
interpreter_python = auto_silent
local_tmp = $BENCH/ansible-local
retry_files_enabled = False

[ssh_connection]
pipelining = True
ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o StrictHostKeyChecking=yes
control_path_dir = $CTL
CFG

# --- running and measuring ----------------------------------------------------------------------
# timed NAME CMD...: run CMD with stdout to $LOGS/NAME.out, stderr and GNU time -v to $LOGS/NAME.err;
# sets T0 T1 (epoch seconds around the run), WALL (seconds), RSS_MIB (peak RSS of the process tree's largest process) and RC.
timed() {
    local name=$1 rss
    shift
    T0=$(date +%s.%N)
    RC=0
    /usr/bin/time -v -o "$LOGS/$name.time" "$@" >"$LOGS/$name.out" 2>"$LOGS/$name.err" || RC=$?
    T1=$(date +%s.%N)
    WALL=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.2f", b - a }')
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$LOGS/$name.time")
    RSS_MIB=$(awk -v k="${rss:-0}" 'BEGIN { printf "%.1f", k / 1024 }')
    log "$name: ${WALL}s, exit $RC, peak RSS ${RSS_MIB} MiB"
}

# castellan_stats FILE: "ok changed failed unreachable hosts" summed over the JSON report's stats.
castellan_stats() {
    python3 - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s = d["stats"].values()
print(*(sum(h.get(k, 0) for h in s) for k in ("ok", "changed", "failed", "unreachable")), len(d["stats"]))
PY
}

# ansible_stats FILE: the same from PLAY RECAP lines ("db1 : ok=10 changed=10 unreachable=0 failed=0 ...").
ansible_stats() {
    awk '/^PLAY RECAP/ { on = 1; next }
        on && / : ok=/ { n++; for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] += kv[2] } }
        END { printf "%d %d %d %d %d\n", v["ok"], v["changed"], v["failed"], v["unreachable"], n }' "$1"
}

# castellan_profile FILE T0 T1: where the run's time went, from the JSON report: per task, the time
# from the previous task's last result (or the process start, T0) to this task's first and last result.
castellan_profile() {
    python3 - "$@" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
t0, t1 = float(sys.argv[2]), float(sys.argv[3])
prev = t0
for play in d["plays"]:
    for t in play["tasks"]:
        ts = [r["finished_at"] for r in t["results"].values() if "finished_at" in r]
        if not ts:
            continue
        first, last = min(ts), max(ts)
        name = ("handler: " if t.get("handler") else "") + t["name"]
        print(f"    {name:<32} {t['module']:<12} first result +{first - prev:6.3f}s  last +{last - prev:6.3f}s")
        prev = last
print(f"    {'(report, close connections, exit)':<45} +{t1 - prev:6.3f}s   (wall {t1 - t0:.3f}s, duration_s {d['duration_s']})")
PY
}

# run_castellan NAME PLAYBOOK: sets WALL RSS_MIB RC STATS.
run_castellan() {
    timed "$1" "$CASTELLAN" playbook "$2" -i "$INVENTORY" -f "$FORKS" --output json
    if [[ -s $LOGS/$1.out ]] && STATS=$(castellan_stats "$LOGS/$1.out" 2>/dev/null); then
        castellan_profile "$LOGS/$1.out" "$T0" "$T1" >"$LOGS/$1.profile" 2>&1 || true
    else
        STATS="? ? ? ? 0"
    fi
}

run_ansible() {
    timed "$1" env ANSIBLE_CONFIG="$BENCH/ansible.cfg" ANSIBLE_NOCOLOR=1 \
        "$VENV/bin/ansible-playbook" -i "$INVENTORY" "$2"
    STATS=$(ansible_stats "$LOGS/$1.out")
}

# check NAME EXPECT_CHANGED: the run exited 0, reached all N hosts without failures, and changed
# nothing (EXPECT_CHANGED=0) or something (=some). Prints the problem and returns 1 otherwise.
check() {
    local name=$1 want=$2 changed failed unreachable hosts
    read -r _ changed failed unreachable hosts <<<"$STATS"
    local problems=()
    ((RC == 0)) || problems+=("exit code $RC")
    [[ $hosts == "$N" ]] || problems+=("$hosts hosts in the report, expected $N")
    [[ $failed == 0 && $unreachable == 0 ]] || problems+=("failed=$failed unreachable=$unreachable")
    if [[ $want == 0 && $changed != 0 ]]; then problems+=("changed=$changed on the no-change run"); fi
    if [[ $want == some && $changed == 0 ]]; then problems+=("changed=0 on the first run"); fi
    if ((${#problems[@]} > 0)); then
        printf 'fleet.sh: %s: %s (logs: %s/%s.{out,err})\n' "$name" "${problems[*]}" "$LOGS" "$name" >&2
        tail -n 5 "$LOGS/$name.err" >&2 || true
        return 1
    fi
}

ratio() { awk -v a="$1" -v c="$2" 'BEGIN { if (c > 0) printf "%.1fx", a / c; else print "-" }'; }

machine="$(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
status=0

if [[ $mode == scale ]]; then
    wipe_hosts
    run_castellan scale-first "$BENCH/simple.yml"
    w1=$WALL r1=$RSS_MIB s1=$STATS
    check scale-first some || status=1
    run_castellan scale-again "$BENCH/simple.yml"
    w2=$WALL r2=$RSS_MIB s2=$STATS
    check scale-again 0 || status=1
    read -r _ c1 f1 u1 _ <<<"$s1"
    read -r _ c2 f2 u2 _ <<<"$s2"
    printf '\ncastellan, %d hosts over SSH, -f %d, 3 tasks (file, copy, lineinfile); %s\n\n' "$N" "$FORKS" "$machine"
    printf '| run | wall s | peak RSS MiB | changed | failed | unreachable |\n|---|---:|---:|---:|---:|---:|\n'
    printf '| first | %s | %s | %s | %s | %s |\n' "$w1" "$r1" "$c1" "$f1" "$u1"
    printf '| no-change | %s | %s | %s | %s | %s |\n' "$w2" "$r2" "$c2" "$f2" "$u2"
    printf '\nper-task timing of the first run (from the JSON finished_at stamps):\n'
    cat "$LOGS/scale-first.profile"
    exit "$status"
fi

wipe_hosts
run_castellan castellan-first "$BENCH/pg-tls.yml"
cw1=$WALL crss1=$RSS_MIB
check castellan-first some || status=1
run_castellan castellan-again "$BENCH/pg-tls.yml"
cw2=$WALL crss2=$RSS_MIB
check castellan-again 0 || status=1
# What castellan wrote on db1, to compare with Ansible's result below.
sums() { (cd "$CASTELLAN_FLEET_DIR/hosts/db1/root/pg" && stat -c '%n %U:%G %a' -- * && sha256sum -- *.conf *.crt *.key); }
sums >"$LOGS/castellan-db1.files" 2>&1 || true

wipe_hosts
stop_masters
run_ansible ansible-first "$BENCH/pg-tls.yml"
aw1=$WALL
check ansible-first some || status=1
run_ansible ansible-again "$BENCH/pg-tls.yml"
aw2=$WALL
check ansible-again 0 || status=1
sums >"$LOGS/ansible-db1.files" 2>&1 || true
if ! diff -u "$LOGS/castellan-db1.files" "$LOGS/ansible-db1.files" >"$LOGS/db1-files.diff"; then
    log "db1's files differ between the two tools (same files, owners, modes expected): $LOGS/db1-files.diff"
    cat "$LOGS/db1-files.diff" >&2
fi

printf '\n%d hosts over SSH, forks %d, 10-task flow; castellan %s vs %s; %s\n\n' \
    "$N" "$FORKS" "$("$CASTELLAN" --version 2>/dev/null | awk '{ print $NF }')" "$ANSIBLE_VERSION" "$machine"
printf '| tool | first run s | no-change run s | peak RSS MiB (first / no-change) |\n|---|---:|---:|---:|\n'
printf '| castellan | %s | %s | %s / %s |\n' "$cw1" "$cw2" "$crss1" "$crss2"
printf '| ansible-playbook | %s | %s | |\n' "$aw1" "$aw2"
printf '| **ratio ansible/castellan** | **%s** | **%s** | |\n' "$(ratio "$aw1" "$cw1")" "$(ratio "$aw2" "$cw2")"
printf '\ncastellan per-task timing (from the JSON finished_at stamps), first run:\n'
cat "$LOGS/castellan-first.profile"
printf 'no-change run:\n'
cat "$LOGS/castellan-again.profile"
exit "$status"
