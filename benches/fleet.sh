#!/usr/bin/env bash
# Fleet benchmark (not a test): castellan, ansible-playbook and pyinfra over SSH on the same local
# fleet of N hosts (tests/fleet), the same "push TLS to PostgreSQL" flow expressed in each tool,
# first run and no-change re-run, with a light and a heavy login shell, against the SSH floor
# measured in the same run.
#
# Usage:
#   benches/fleet.sh [OPTIONS] N [N...]    every tool on N hosts (each N in turn), light and heavy shell
#   benches/fleet.sh --scale N FORKS [--max-connections M]
#                                          castellan alone, N hosts, -f FORKS, a 3-task playbook
#                                          (file, copy, lineinfile), and the floor at N
# Options (compare mode):
#   --forks F            hosts at once for every tool and the floor (default 50: -f 50, --parallel 50)
#   --shells LIST        light,heavy (default both): heavy = the fleet user's ~/.bashrc burns ~100 ms
#                        of CPU (a busy loop), paid by every remote command a tool runs
#   --tools LIST         castellan,pyinfra,ansible (default all three)
#
# Environment (defaults keep it off the test suite's fleet):
#   CASTELLAN_FLEET_NET=9  CASTELLAN_FLEET_DIR=/tmp/castellan-bench-fleet
#   CASTELLAN_BENCH_DIR=/tmp/castellan-bench        playbooks, certs, configs, logs, control sockets
#   CASTELLAN_BENCH_VENV=/tmp/castellan-bench-venv  virtualenv with ansible-core and pyinfra 3.x from
#                                                   PyPI (created, or completed, if missing)
#   CARGO_TARGET_DIR                                where castellan is built (cargo's default otherwise)
# Needs root (the fleet runs sshd on port 22). The fleet is stopped on exit, whatever happens; a tool
# that fails gets FAIL in its row and the others still run (exit status 1 at the end).
set -euo pipefail

usage() {
    sed -n '7,16p' "${BASH_SOURCE[0]}" >&2
    exit 2
}
mode=compare
FORKS=50
SHELLS=light,heavy
TOOLS=castellan,pyinfra,ansible
MAXCONN=""
sizes=()
while (($# > 0)); do
    case $1 in
    --scale)
        mode=scale
        [[ $# -ge 3 && $2 =~ ^[0-9]+$ && $3 =~ ^[0-9]+$ ]] || usage
        sizes=("$((10#$2))")
        FORKS=$((10#$3))
        shift 2
        ;;
    --max-connections)
        [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || usage
        MAXCONN=$((10#$2))
        shift
        ;;
    --forks)
        [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || usage
        FORKS=$((10#$2))
        shift
        ;;
    --shells)
        [[ $# -ge 2 && $2 =~ ^(light|heavy)(,(light|heavy))?$ ]] || usage
        SHELLS=$2
        shift
        ;;
    --tools)
        [[ $# -ge 2 && $2 =~ ^(castellan|pyinfra|ansible)(,(castellan|pyinfra|ansible))*$ ]] || usage
        TOOLS=$2
        shift
        ;;
    [0-9]*)
        [[ $mode == compare && $1 =~ ^[0-9]+$ ]] || usage
        sizes+=("$((10#$1))")
        ;;
    *) usage ;;
    esac
    shift
done
((${#sizes[@]} > 0 && FORKS >= 1)) || usage
for n in "${sizes[@]}"; do ((n >= 1)) || usage; done
[[ $mode == scale ]] && SHELLS=light TOOLS=castellan
[[ -z $MAXCONN || $mode == scale ]] || usage
has() { [[ ,$2, == *,$1,* ]]; }

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

# Stop the ssh ControlMasters ansible left under $CTL (ControlPersist).
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
# Many hosts: ssh clients and their pipes (see tests/fleet/README.md, "Many hosts").
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
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

# --- ansible-core and pyinfra in a virtualenv ---------------------------------------------------
if has ansible "$TOOLS" || has pyinfra "$TOOLS"; then
    [[ -x $VENV/bin/pip ]] || python3 -m venv "$VENV"
    want=()
    [[ -x $VENV/bin/ansible-playbook ]] || want+=(ansible-core)
    [[ -x $VENV/bin/pyinfra ]] || want+=('pyinfra>=3,<4')
    if ((${#want[@]} > 0)); then
        log "installing ${want[*]} into $VENV"
        # A tool that cannot be installed fails its runs (FAIL rows); the others still run.
        "$VENV/bin/pip" install -q "${want[@]}" || log "pip install ${want[*]} failed"
    fi
    ANSIBLE_VERSION=$("$VENV/bin/ansible-playbook" --version 2>/dev/null) || ANSIBLE_VERSION="no ansible-playbook"
    ANSIBLE_VERSION=${ANSIBLE_VERSION%%$'\n'*}
    PYINFRA_VERSION=$("$VENV/bin/pyinfra" --version 2>&1 | tail -n 1) || PYINFRA_VERSION="no pyinfra"
fi

# --- inputs: dummy certificates, the flow in each tool's language -------------------------------
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

# The same flow for pyinfra 3.x: operations in order; the handler is an operation run only where
# one of the others changed something (pyinfra has no handlers: `_if=any_changed(...)`). The
# blockinfile marker is Ansible's, so that the three tools leave the same bytes.
cat >"$BENCH/pg_tls_pyinfra.py" <<PY
# Written by benches/fleet.sh: the pg-tls.yml flow in pyinfra's language.
from pyinfra import host
from pyinfra.operations import files, server
from pyinfra.operations.util import any_changed

root = host.data.fleet_root + "/pg"
conf = root + "/postgresql.conf"
pg = dict(user="postgres", group="postgres")
changes = []
files.directory(name="configuration directory", path=root, mode="700", **pg)
for f in ("server.crt", "server.key", "root.crt"):
    changes.append(files.put(name=f, src="$BENCH/certs/" + f, dest=root + "/" + f, mode="600", **pg))
for key, value in (
    ("ssl", "on"),
    ("ssl_cert_file", "'" + root + "/server.crt'"),
    ("ssl_key_file", "'" + root + "/server.key'"),
    ("ssl_ca_file", "'" + root + "/root.crt'"),
):
    changes.append(files.line(name=key, path=conf, line="^#?" + key + r"\\s*=.*$",
                              replace=key + " = " + value, extended_regex=True))
    if key == "ssl":
        changes.append(files.file(name="postgresql.conf owner and mode", path=conf, mode="600", **pg))
changes.append(files.block(
    name="certificate-only access",
    path=root + "/pg_hba.conf",
    content="hostssl all all 0.0.0.0/0 cert clientcert=verify-full\n"
    "hostssl all all ::/0      cert clientcert=verify-full",
    marker="# {mark} ANSIBLE MANAGED BLOCK",
))
changes.append(files.file(name="pg_hba.conf owner and mode", path=root + "/pg_hba.conf", mode="600", **pg))
server.shell(name="reload postgresql", commands=["touch " + root + "/reloaded"], _if=any_changed(*changes))
PY

# Acceptance 5 of issue 3 (--scale): a simple 3-task playbook.
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

# The peak memory of a process tree: every 0.2 s (0.5 s above 300 hosts), the sum of the RSS and of
# the PSS (shared pages split between their users) of ROOT's descendants and of the processes whose
# command line contains NEEDLE (ansible's ControlPersist masters leave the tree).
cat >"$BENCH/treemem.py" <<'PY'
import os, sys, time
root, out, period = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
needle = sys.argv[4].encode() if len(sys.argv) > 4 and sys.argv[4] else None
page = os.sysconf("SC_PAGE_SIZE")
peak_rss = peak_pss = peak_n = 0
def alive():
    try:
        os.kill(root, 0)
        return True
    except ProcessLookupError:
        return False
while alive():
    kids, extra = {}, []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            if needle is not None:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if needle in f.read():
                        extra.append(int(d))
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    tree, i = [root], 0
    while i < len(tree):
        tree.extend(kids.get(tree[i], []))
        i += 1
    pids = set(tree[1:]) | set(extra)  # not /usr/bin/time itself
    rss = pss = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup", "rb") as f:
                for line in f:
                    if line.startswith(b"Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith(b"Pss:"):
                        pss += int(line.split()[1]) * 1024
        except OSError:
            pass
    if rss > peak_rss:
        peak_rss, peak_n = rss, len(pids)
    peak_pss = max(peak_pss, pss)
    time.sleep(period)
with open(out, "w") as f:
    f.write(f"{peak_rss} {peak_pss} {peak_n}\n")
PY

# --- running and measuring ----------------------------------------------------------------------
# timed NAME CMD...: run CMD with stdout to $LOGS/NAME.out, stderr to $LOGS/NAME.err, GNU time -v to
# $LOGS/NAME.time; sets T0 T1 (epoch seconds around the run), WALL (seconds), RC, RSS_MIB (peak RSS
# of the largest process), TREE_RSS_MIB / TREE_PSS_MIB (peak sums over the process tree, see
# treemem.py) and TREE_N (processes in the tree at the RSS peak). MEM_NEEDLE: see treemem.py.
MEM_NEEDLE=""
timed() {
    local name=$1 rss pid period=0.2 tr tp tn
    shift
    ((N <= 300)) || period=0.5
    T0=$(date +%s.%N)
    RC=0
    /usr/bin/time -v -o "$LOGS/$name.time" "$@" >"$LOGS/$name.out" 2>"$LOGS/$name.err" &
    pid=$!
    python3 "$BENCH/treemem.py" "$pid" "$LOGS/$name.mem" "$period" "$MEM_NEEDLE" &
    wait "$pid" || RC=$?
    T1=$(date +%s.%N)
    wait $! || true
    WALL=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.2f", b - a }')
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$LOGS/$name.time" 2>/dev/null)
    RSS_MIB=$(awk -v k="${rss:-0}" 'BEGIN { printf "%.1f", k / 1024 }')
    read -r tr tp tn <"$LOGS/$name.mem" 2>/dev/null || { tr=0 tp=0 tn=0; }
    TREE_RSS_MIB=$(awk -v b="$tr" 'BEGIN { printf "%.1f", b / 1048576 }')
    TREE_PSS_MIB=$(awk -v b="$tp" 'BEGIN { printf "%.1f", b / 1048576 }')
    TREE_N=$tn
    log "$name: ${WALL}s, exit $RC, peak RSS ${RSS_MIB} MiB (process), tree ${TREE_RSS_MIB} MiB RSS / ${TREE_PSS_MIB} MiB PSS in $TREE_N processes"
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

# pyinfra_stats FILE: the same from pyinfra's log (stderr): its "--> Results:" table counts
# operations, not hosts: "Grand total  OPS  SUCCESS  ERROR  NO-CHANGE", where a success is an
# operation that ran commands (a change); hosts are the "[dbK] Connected" lines.
pyinfra_stats() {
    python3 - "$1" <<'PY'
import re, sys
text = re.sub(r"\x1b\[[0-9;]*m", "", open(sys.argv[1], errors="replace").read())
num = lambda v: 0 if v == "-" else int(v)
ok = changed = failed = 0
m = re.search(r"^\s*Grand total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", text, re.M)
if m:
    ok, changed, failed = num(m.group(1)), num(m.group(2)), num(m.group(3))
hosts = len(set(re.findall(r"\[(db\d+)\]\s+Connected", text)))
unreachable = len(set(re.findall(r"\[(db\d+)\]\s+Could not connect", text)))
print(ok, changed, failed, unreachable, hosts)
PY
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

# run_TOOL NAME FLOW: run the tool once; sets WALL RC RSS_MIB TREE_* STATS.
run_castellan() {
    local extra=()
    [[ -z $MAXCONN ]] || extra=(--max-connections "$MAXCONN")
    MEM_NEEDLE=""
    timed "$1" "$CASTELLAN" playbook "$2" -i "$INVENTORY" -f "$FORKS" --output json "${extra[@]}"
    if [[ -s $LOGS/$1.out ]] && STATS=$(castellan_stats "$LOGS/$1.out" 2>/dev/null); then
        castellan_profile "$LOGS/$1.out" "$T0" "$T1" >"$LOGS/$1.profile" 2>&1 || true
    else
        STATS="? ? ? ? 0"
    fi
}

run_ansible() {
    MEM_NEEDLE="$CTL/"
    timed "$1" env ANSIBLE_CONFIG="$BENCH/ansible.cfg" ANSIBLE_NOCOLOR=1 \
        "$VENV/bin/ansible-playbook" -i "$INVENTORY" "$BENCH/pg-tls.yml"
    STATS=$(ansible_stats "$LOGS/$1.out") || STATS="? ? ? ? 0"
}

run_pyinfra() {
    MEM_NEEDLE=""
    timed "$1" env PYINFRA_PROGRESS=off "$VENV/bin/pyinfra" -y --parallel "$FORKS" --no-wait \
        "$BENCH/inventory_pyinfra.py" "$BENCH/pg_tls_pyinfra.py"
    STATS=$(pyinfra_stats "$LOGS/$1.err") || STATS="? ? ? ? 0"
}

# The floor: one SSH connection running `true` per host, FORKS at a time, OpenSSH with the
# curve25519-sha256 key exchange (the inventory's setting), no multiplexing. Sets WALL RC.
run_floor() {
    local k addr
    : >"$BENCH/floor.hosts"
    for ((k = 1; k <= N; k++)); do
        fleet_addr addr "$k"
        echo "$addr" >>"$BENCH/floor.hosts"
    done
    MEM_NEEDLE=""
    timed "$1" xargs -a "$BENCH/floor.hosts" -P "$FORKS" -I '{}' \
        ssh -n -i "$FLEET_KEY" -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes \
        -o UserKnownHostsFile="$FLEET_KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null \
        -o ControlMaster=no -o ControlPath=none -o ConnectTimeout=30 \
        -o KexAlgorithms=curve25519-sha256 'root@{}' true
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

ratio() { awk -v a="$1" -v c="$2" 'BEGIN { if (a + 0 > 0 && c + 0 > 0) printf "%.2fx", a / c; else print "-" }'; }
per_host() { awk -v m="$1" -v n="$N" 'BEGIN { if (m + 0 > 0) printf "%.2f", m / n; else print "-" }'; }

# wipe_hosts: remove what the flow wrote on every host.
wipe_hosts() {
    local k
    for ((k = 1; k <= N; k++)); do rm -rf "$CASTELLAN_FLEET_DIR/hosts/db$k/root/pg"; done
}

# What the flow left on db1 (names, owners, modes, SHA-256), to compare the tools.
sums() { (cd "$CASTELLAN_FLEET_DIR/hosts/db1/root/pg" && stat -c '%n %U:%G %a' -- * && sha256sum -- *.conf *.crt *.key); }

# Light or heavy login shell: sshd runs the user's login shell (bash for root) for every command,
# and Debian's bash sources ~/.bashrc when started by sshd, so a HOME whose .bashrc burns CPU costs
# every remote command that much. LOOPS: iterations of the busy loop worth ~100 ms of CPU here.
LOOPS=""
calibrate_heavy() {
    local n=200000 cpu
    cpu=$( { /usr/bin/time -f '%U %S' bash -c "i=0; while ((i < $n)); do i=\$((i + 1)); done" >/dev/null; } 2>&1 | tail -n 1)
    LOOPS=$(awk -v c="$cpu" -v n="$n" 'BEGIN { split(c, t, " "); s = t[1] + t[2]; if (s <= 0) s = 0.01; printf "%d", n * 0.1 / s }')
    log "heavy login shell: a busy loop of $LOOPS iterations (~100 ms of CPU: $n took ${cpu% *} s user)"
}
set_shell() {
    local k rc
    for ((k = 1; k <= N; k++)); do
        rc=$CASTELLAN_FLEET_DIR/hosts/db$k/home/.bashrc
        if [[ $1 == heavy ]]; then
            printf '# benches/fleet.sh: a heavy login shell (~100 ms of CPU)\ni=0; while ((i < %d)); do i=$((i + 1)); done; unset i\n' "$LOOPS" >"$rc"
        else
            rm -f "$rc"
        fi
    done
}

machine() { echo "$(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"; }

# shellcheck source-path=SCRIPTDIR source=../tests/fleet/lib.sh
. "$REPO/tests/fleet/lib.sh"

status=0
REPORT=$BENCH/report.md
: >"$REPORT"
has heavy "$SHELLS" && calibrate_heavy

for N in "${sizes[@]}"; do
    log "fleet of $N hosts (net $CASTELLAN_FLEET_NET, dir $CASTELLAN_FLEET_DIR)"
    "$REPO/tests/fleet/up.sh" "$N" --no-postgres >&2
    [[ -s $INVENTORY ]] || die "no inventory at $INVENTORY"
    if has pyinfra "$TOOLS"; then
        python3 - "$INVENTORY" "$BENCH/inventory_pyinfra.py" <<'PY'
import sys, yaml
inv = yaml.safe_load(open(sys.argv[1]))["all"]["children"]["fleet"]
v = inv["vars"]
known = v["castellan_known_hosts"]
with open(sys.argv[2], "w") as out:
    out.write("# Written by benches/fleet.sh from the fleet's inventory.yml.\nfleet = [\n")
    for name, h in inv["hosts"].items():
        data = dict(ssh_hostname=h["ansible_host"], ssh_user=v["ansible_user"],
                    ssh_key=v["ansible_ssh_private_key_file"], ssh_known_hosts_file=known,
                    ssh_strict_host_key_checking="yes", fleet_root=h["fleet_root"])
        out.write(f"    ({name!r}, {data!r}),\n")
    out.write("]\n")
PY
    fi
    for shell in ${SHELLS//,/ }; do
        set_shell "$shell"
        tag="$N-$shell"
        run_floor "floor-$tag" || true
        floor=$WALL
        ((RC == 0)) || {
            log "the floor failed (exit $RC): $LOGS/floor-$tag.err"
            floor=FAIL status=1
        }
        declare -A first=() again=() mem=() counts=()
        for tool in ${TOOLS//,/ }; do
            flow=$BENCH/pg-tls.yml
            [[ $mode == scale ]] && flow=$BENCH/simple.yml
            wipe_hosts
            stop_masters
            ok=1
            "run_$tool" "$tool-$tag-first" "$flow"
            w1=$WALL m1=$TREE_RSS_MIB p1=$TREE_PSS_MIB s1=$STATS
            check "$tool-$tag-first" some || ok=0
            "run_$tool" "$tool-$tag-again" "$flow"
            w2=$WALL m2=$TREE_RSS_MIB p2=$TREE_PSS_MIB s2=$STATS
            check "$tool-$tag-again" 0 || ok=0
            if ((ok)); then
                first[$tool]=$w1 again[$tool]=$w2
            else
                first[$tool]=FAIL again[$tool]=FAIL status=1
            fi
            mem[$tool]="$(per_host "$(awk -v a="$m1" -v b="$m2" 'BEGIN { print (a > b ? a : b) }')") / $(per_host "$(awk -v a="$p1" -v b="$p2" 'BEGIN { print (a > b ? a : b) }')")"
            read -r _ c1 f1 u1 _ <<<"$s1"
            read -r _ c2 f2 u2 _ <<<"$s2"
            counts[$tool]="$c1/$f1/$u1, $c2/$f2/$u2"
            if [[ $mode == compare ]]; then sums >"$LOGS/$tool-$tag-db1.files" 2>&1 || true; fi
        done
        stop_masters
        # The report for this size and shell.
        {
            if [[ $mode == scale ]]; then
                printf '\n### %d hosts, castellan -f %d%s, 3 tasks (file, copy, lineinfile); %s\n\n' "$N" "$FORKS" \
                    "${MAXCONN:+ --max-connections $MAXCONN}" "$(machine)"
            else
                printf '\n### %d hosts, %s login shell, %d at a time; %s\n\n' "$N" "$shell" "$FORKS" "$(machine)"
            fi
            printf '| tool | first run s | no-change run s | first / floor | no-change / floor | peak MiB per host, RSS / PSS | changed/failed/unreachable (first, no-change) |\n'
            printf '|---|---:|---:|---:|---:|---:|---|\n'
            printf '| floor (ssh + `true`, %d at a time) | %s | | | | | |\n' "$FORKS" "$floor"
            for tool in ${TOOLS//,/ }; do
                printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$tool" "${first[$tool]}" "${again[$tool]}" \
                    "$(ratio "${first[$tool]}" "$floor")" "$(ratio "${again[$tool]}" "$floor")" "${mem[$tool]}" "${counts[$tool]}"
            done
            for peer in pyinfra ansible; do
                has castellan "$TOOLS" && has "$peer" "$TOOLS" || continue
                printf '| **%s / castellan** | **%s** | **%s** | | | | |\n' "$peer" \
                    "$(ratio "${first[$peer]}" "${first[castellan]}")" "$(ratio "${again[$peer]}" "${again[castellan]}")"
            done
            if has castellan "$TOOLS" && [[ -s $LOGS/castellan-$tag-again.profile ]]; then
                printf '\ncastellan per-task timing (from the JSON finished_at stamps), no-change run:\n\n```\n'
                cat "$LOGS/castellan-$tag-again.profile"
                printf '```\n'
            fi
            for tool in pyinfra ansible; do
                has castellan "$TOOLS" && has "$tool" "$TOOLS" || continue
                if ! diff -u "$LOGS/castellan-$tag-db1.files" "$LOGS/$tool-$tag-db1.files" >"$LOGS/$tool-$tag-db1.diff" 2>&1; then
                    printf '\ndb1 files differ between castellan and %s: %s\n' "$tool" "$LOGS/$tool-$tag-db1.diff"
                fi
            done
        } | tee -a "$REPORT"
        unset first again mem counts
    done
done
set_shell light 2>/dev/null || true
printf '\n(castellan %s; %s; %s; report in %s, logs in %s)\n' \
    "$("$CASTELLAN" --version 2>/dev/null | awk '{ print $NF }')" "${ANSIBLE_VERSION:-no ansible}" \
    "${PYINFRA_VERSION:-no pyinfra}" "$REPORT" "$LOGS"
exit "$status"
