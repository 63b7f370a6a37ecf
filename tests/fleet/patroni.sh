#!/usr/bin/env bash
# A real Patroni cluster for tests: N members (default 3) db1..dbN on the fleet's loopback addresses,
# each also an SSH host of the fleet (up.sh N --no-postgres), one etcd, PostgreSQL 15 from Debian's
# packages run by Patroni as user postgres. Needs root.
#
# Usage: tests/fleet/patroni.sh up [N]      start or repair (idempotent: running members are kept)
#        tests/fleet/patroni.sh down [--purge]  stop Patroni (it stops PostgreSQL), etcd and the sshds;
#                                          --purge also drops the data, the /etc/hosts block, the
#                                          fleet dir and the inventory
#        tests/fleet/patroni.sh ctl ARGS...   patronictl as user postgres with db1's configuration
#
# Installs what is missing: etcd-server, python3-venv and postgresql with apt; Patroni from PyPI
# into a venv ($CASTELLAN_PATRONI_VENV, default /var/cache/castellan/patroni-venv, kept between
# runs). Layout (CASTELLAN_FLEET_DIR, CASTELLAN_FLEET_NET as for up.sh; see README.md):
#   etcd          127.NET.0.1:2379 (peer 2380), data in $FLEET_DIR/etcd
#   dbK           Patroni REST API 127.NET.1.K:8008, PostgreSQL 127.NET.1.K:5432, config
#                 hosts/dbK/patroni.yml, data hosts/dbK/pgdata, socket dir hosts/dbK/pgsock,
#                 Patroni's log hosts/dbK/patroni.log; scope (cluster name) fNET
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PATRONI_VENV=${CASTELLAN_PATRONI_VENV:-/var/cache/castellan/patroni-venv}
# Pinned: the tests read patronictl's output.
PATRONI_PIP=('patroni[etcd3]==4.1.5' 'psycopg2-binary==2.9.13')
PATRONI_SCOPE=f$FLEET_NET
ETCD_ADDR=127.$FLEET_NET.0.1
ETCD_DIR=$FLEET_DIR/etcd
REST_PORT=8008
INVENTORY_HEADER='# Written by tests/fleet/patroni.sh'

usage() {
    echo "usage: $0 up [N] | down [--purge] | ctl PATRONICTL-ARGS..." >&2
    exit 2
}

# http_get HOST PORT PATH: print the response body of a plain HTTP GET (bash's /dev/tcp; no curl on
# a fresh machine). Fails when nothing answers.
http_get() {
    (
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&3
        timeout 5 cat <&3 | sed '1,/^\r\{0,1\}$/d'
    ) 2>/dev/null
}

# pid_of_cmdline VAR COMM WORD: set VAR to the pid of a live process named COMM whose command line
# has the argument WORD, or to "".
pid_of_cmdline() {
    local _p _c _a _found=""
    local -a _argv
    for _p in /proc/[0-9]*; do
        { read -r _c <"$_p/comm"; } 2>/dev/null || continue
        [[ $_c == "$2" ]] || continue
        { mapfile -d '' -t _argv <"$_p/cmdline"; } 2>/dev/null || continue
        for _a in "${_argv[@]}"; do
            if [[ $_a == "$3" ]] && fleet_alive "${_p#/proc/}"; then
                _found=${_p#/proc/}
                break 2
            fi
        done
    done
    printf -v "$1" '%s' "$_found"
}

etcd_pid() { pid_of_cmdline "$1" etcd "--data-dir=$ETCD_DIR"; }
# patroni_pid VAR K: dbK's Patroni, or "". The pid start_member recorded counts while it is still
# on its way to Patroni (setsid, setpriv and env exec one another, each with the config in argv):
# under load a scan by name alone missed a member that had not yet exec'd Patroni.
patroni_pid() {
    local _cfg=$FLEET_DIR/hosts/db$2/patroni.yml _p="" _a
    local -a _argv
    { read -r _p <"$FLEET_DIR/hosts/db$2/patroni.pid"; } 2>/dev/null || _p=""
    if [[ $_p =~ ^[0-9]+$ ]] && fleet_alive "$_p" &&
        { mapfile -d '' -t _argv <"/proc/$_p/cmdline"; } 2>/dev/null; then
        for _a in "${_argv[@]}"; do
            if [[ $_a == "$_cfg" ]]; then
                printf -v "$1" '%s' "$_p"
                return 0
            fi
        done
    fi
    pid_of_cmdline "$1" patroni "$_cfg"
}

# postmaster_pid VAR K: the running postmaster of dbK's data directory, or "".
postmaster_pid() {
    local _pm="" _c
    { read -r _pm <"$FLEET_DIR/hosts/db$2/pgdata/postmaster.pid"; } 2>/dev/null || _pm=""
    if [[ $_pm =~ ^[0-9]+$ ]] && fleet_alive "$_pm" &&
        { read -r _c <"/proc/$_pm/comm"; } 2>/dev/null && [[ $_c == postgres ]]; then
        printf -v "$1" '%s' "$_pm"
    else
        printf -v "$1" '%s' ""
    fi
}

install_deps() {
    local -a need=()
    [[ -x /usr/bin/etcd ]] || need+=(etcd-server)
    /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
    fleet_pg_installed || need+=(postgresql)
    if ((${#need[@]} > 0)); then
        echo "patroni.sh: installing ${need[*]}" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
    fi
    # Debian's package starts etcd where systemd runs; this fleet runs its own.
    mkdir -p /run/lock "$(dirname "$PATRONI_VENV")"
    (
        flock 8
        local want
        want=$(printf '%s\n' "${PATRONI_PIP[@]}")
        if [[ -x $PATRONI_VENV/bin/patroni && $(cat "$PATRONI_VENV/.castellan-pip" 2>/dev/null) == "$want" ]]; then
            exit 0
        fi
        echo "patroni.sh: creating $PATRONI_VENV (${PATRONI_PIP[*]})" >&2
        # A venv's scripts name their interpreter by path: it is built where it lives; the
        # marker, written last, says it is complete.
        rm -rf "$PATRONI_VENV"
        /usr/bin/python3 -m venv "$PATRONI_VENV" >&2
        "$PATRONI_VENV/bin/pip" install -q --disable-pip-version-check "${PATRONI_PIP[@]}" \
            >"$PATRONI_VENV.pip.log" 2>&1 || { cat "$PATRONI_VENV.pip.log" >&2; exit 1; }
        "$PATRONI_VENV/bin/patroni" --version >/dev/null
        printf '%s\n' "$want" >"$PATRONI_VENV/.castellan-pip"
    ) 8>/run/lock/castellan-patroni-venv.lock
    chmod -R a+rX "$PATRONI_VENV"
}

start_etcd() {
    local pid i
    etcd_pid pid
    [[ -n $pid ]] && return 0
    mkdir -p "$ETCD_DIR"
    chmod 0700 "$ETCD_DIR"
    setsid /usr/bin/etcd --name "$PATRONI_SCOPE" "--data-dir=$ETCD_DIR" \
        --listen-client-urls "http://$ETCD_ADDR:2379" --advertise-client-urls "http://$ETCD_ADDR:2379" \
        --listen-peer-urls "http://$ETCD_ADDR:2380" --initial-advertise-peer-urls "http://$ETCD_ADDR:2380" \
        --initial-cluster "$PATRONI_SCOPE=http://$ETCD_ADDR:2380" --initial-cluster-state new \
        </dev/null >>"$FLEET_DIR/etcd.log" 2>&1 9>&- 8>&- &
    for ((i = 0; i < 100; i++)); do
        if http_get "$ETCD_ADDR" 2379 /health | grep -q '"health":"true"'; then return 0; fi
        sleep 0.1
    done
    tail -n 5 "$FLEET_DIR/etcd.log" >&2
    fleet_die "etcd on $ETCD_ADDR:2379 is not healthy after 10 s (see $FLEET_DIR/etcd.log)"
}

# password NAME: a password kept in the fleet dir (0600), made once.
password() {
    local f=$FLEET_DIR/patroni-$1.password
    if [[ ! -s $f ]]; then
        (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$f")
    fi
    cat "$f"
}

# member_config K: dbK's patroni.yml.
member_config() {
    local k=$1 addr dir
    fleet_addr addr "$k"
    dir=$FLEET_DIR/hosts/db$k
    cat <<EOF
# castellan test fleet Patroni member db$k (written by tests/fleet/patroni.sh; edits are overwritten)
scope: $PATRONI_SCOPE
name: db$k
restapi:
  listen: $addr:$REST_PORT
  connect_address: $addr:$REST_PORT
etcd3:
  hosts: $ETCD_ADDR:2379
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 2
    retry_timeout: 5
    postgresql:
      use_pg_rewind: false
      parameters:
        max_connections: 100
      pg_hba:
        - local all all peer
        - host replication replicator 127.0.0.0/8 scram-sha-256
        - host all all 127.0.0.0/8 scram-sha-256
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
    - no-sync
postgresql:
  listen: $addr:5432
  connect_address: $addr:5432
  data_dir: $dir/pgdata
  bin_dir: $FLEET_PG_BIN
  pgpass: $dir/patroni/pgpass
  use_unix_socket: true
  authentication:
    superuser:
      username: postgres
      password: $(password superuser)
    replication:
      username: replicator
      password: $(password replication)
  parameters:
    unix_socket_directories: $dir/pgsock
EOF
}

start_member() {
    local k=$1 dir pid cfg
    dir=$FLEET_DIR/hosts/db$k
    cfg=$dir/patroni.yml
    install -d -o postgres -g postgres -m 0700 "$dir/pgdata"
    install -d -o postgres -g postgres -m 2775 "$dir/pgsock"
    install -d -o postgres -g postgres -m 0700 "$dir/patroni"
    (umask 077 && member_config "$k" >"$cfg.new")
    chown postgres:postgres "$cfg.new"
    local changed=1
    if cmp -s "$cfg.new" "$cfg"; then changed=0; fi
    mv -f "$cfg.new" "$cfg"
    patroni_pid pid "$k"
    if [[ -n $pid ]]; then
        if ((changed)); then kill -HUP "$pid"; fi
        echo "db$k kept"
        return 0
    fi
    # A postmaster left without its Patroni (Patroni was killed): stop it, Patroni starts it again.
    postmaster_pid pid "$k"
    if [[ -n $pid ]]; then fleet_stop QUIT "$pid" >/dev/null; fi
    : >>"$dir/patroni.log"
    chown postgres:postgres "$dir/patroni.log"
    # setpriv execs (no parent left behind); setsid: not in the caller's process group.
    setsid setpriv --reuid=postgres --regid=postgres --init-groups -- \
        env -i PATH=/usr/bin:/bin HOME="$dir" LC_ALL=C.UTF-8 \
        "$PATRONI_VENV/bin/patroni" "$cfg" </dev/null >>"$dir/patroni.log" 2>&1 9>&- 8>&- &
    # Not a process group leader, so setsid execs rather than forks: $! becomes Patroni itself.
    echo "$!" >"$dir/patroni.pid"
    echo "db$k started"
}

# wait_cluster N: every member runs, one leader, the others streaming from it (120 s).
wait_cluster() {
    local n=$1 i k addr body ok leaders
    local pid
    for ((i = 0; i < 600; i++)); do
        ok=0 leaders=0
        for ((k = 1; k <= n; k++)); do
            fleet_addr addr "$k"
            patroni_pid pid "$k"
            if [[ -z $pid ]]; then
                echo "db$k: Patroni exited; $FLEET_DIR/hosts/db$k/patroni.log says:" >&2
                tail -n 8 "$FLEET_DIR/hosts/db$k/patroni.log" | sed 's/^/    /' >&2
                fleet_die "the Patroni cluster did not come up"
            fi
            body=$(http_get "$addr" "$REST_PORT" /patroni) || body=""
            [[ $body == *'"state": "running"'* || $body == *'"state": "streaming"'* ]] || continue
            if [[ $body == *'"role": "primary"'* ]]; then
                leaders=$((leaders + 1))
                ok=$((ok + 1))
            elif [[ $body == *'"replication_state": "streaming"'* ]]; then
                ok=$((ok + 1))
            fi
        done
        ((ok == n && leaders == 1)) && return 0
        sleep 0.2
    done
    for ((k = 1; k <= n; k++)); do
        echo "db$k: $FLEET_DIR/hosts/db$k/patroni.log says:" >&2
        tail -n 5 "$FLEET_DIR/hosts/db$k/patroni.log" | sed 's/^/    /' >&2
    done
    fleet_die "the Patroni cluster is not up after 120 s ($ok of $n members ready, $leaders leaders)"
}

write_inventory() {
    local n=$1 k addr dns dir
    {
        printf '%s up %d (fleet dir %s); edits are overwritten.\n' "$INVENTORY_HEADER" "$n" "$FLEET_DIR"
        printf 'all:\n  children:\n    fleet:\n      children:\n        postgres:\n          hosts:\n'
        for ((k = 1; k <= n; k++)); do
            fleet_addr addr "$k"
            fleet_dns_name dns "$k"
            dir=$FLEET_DIR/hosts/db$k
            printf '            db%d:\n' "$k"
            printf '              %s: %s\n' \
                ansible_host "$addr" \
                fleet_root "\"$dir/root\"" \
                pg_dns_name "$dns" \
                pg_data_dir "\"$dir/pgdata\"" \
                pg_socket_dir "\"$dir/pgsock\"" \
                patroni_config "\"$dir/patroni.yml\"" \
                patroni_member "db$k" \
                patroni_api "\"http://$addr:$REST_PORT\"" \
                patroni_log "\"$dir/patroni.log\""
        done
        printf '          vars:\n'
        printf '            %s: %s\n' \
            pg_version "$FLEET_PG_VERSION" \
            pg_port 5432 \
            pg_os_user postgres \
            pg_bin_dir "$FLEET_PG_BIN" \
            patronictl "\"$PATRONI_VENV/bin/patronictl\"" \
            patroni_scope "$PATRONI_SCOPE" \
            patroni_etcd "\"http://$ETCD_ADDR:2379\""
        printf '      vars:\n'
        printf '        ansible_user: root\n'
        printf '        ansible_ssh_private_key_file: "%s"\n' "$FLEET_KEY"
        printf '        ansible_ssh_common_args: "-o UserKnownHostsFile=%s -o KexAlgorithms=curve25519-sha256"\n' "$FLEET_KNOWN_HOSTS"
        printf '        castellan_known_hosts: "%s"\n' "$FLEET_KNOWN_HOSTS"
        printf '        fleet_dir: "%s"\n' "$FLEET_DIR"
    } >"$FLEET_INVENTORY.new"
    mv -f "$FLEET_INVENTORY.new" "$FLEET_INVENTORY"
}

cmd_up() {
    local n=${1:-3} k start results
    [[ $n =~ ^[1-9]$ ]] || fleet_die "N must be 1..9, got '$n'"
    [[ $(id -u) == 0 ]] || fleet_die "must run as root"
    start=$(date +%s.%N)
    install_deps
    # The SSH side of every member (and no Debian cluster): up.sh's own hosts.
    bash "$FLEET_SCRIPT_DIR/up.sh" "$n" --no-postgres >/dev/null
    chmod a+x "$FLEET_DIR" "$FLEET_DIR/hosts"
    runuser -u postgres -- test -x "$FLEET_DIR/hosts" ||
        fleet_die "user postgres cannot reach $FLEET_DIR/hosts (a parent directory lacks o+x)"
    exec 8>"$FLEET_DIR/.patroni.lock"
    flock 8
    # Members above N (an earlier, bigger cluster) are stopped.
    local dir pid
    for dir in "$FLEET_DIR"/hosts/db*; do
        k=${dir##*/db}
        [[ $k =~ ^[0-9]+$ ]] && ((k > n)) || continue
        patroni_pid pid "$k"
        if [[ -n $pid ]]; then fleet_stop TERM "$pid" >/dev/null; fi
    done
    start_etcd
    results=""
    for ((k = 1; k <= n; k++)); do
        chmod a+x "$FLEET_DIR/hosts/db$k"
        results+=$(start_member "$k")$'\n'
    done
    wait_cluster "$n"
    fleet_etc_hosts "$n"
    write_inventory "$n"
    printf 'patroni: %d members (scope %s, etcd %s:2379): %d started, %d kept, in %ss; inventory %s\n' \
        "$n" "$PATRONI_SCOPE" "$ETCD_ADDR" "$(grep -c ' started$' <<<"$results" || true)" \
        "$(grep -c ' kept$' <<<"$results" || true)" \
        "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" "$FLEET_INVENTORY"
}

cmd_down() {
    local purge=0 k pid dir stopped=0
    case ${1:-} in
    "") ;;
    --purge) purge=1 ;;
    *) usage ;;
    esac
    if [[ -d $FLEET_DIR ]]; then
        exec 8>"$FLEET_DIR/.patroni.lock"
        flock 8
    fi
    local -a pids=()
    for dir in "$FLEET_DIR"/hosts/db*; do
        k=${dir##*/db}
        [[ $k =~ ^[0-9]+$ ]] || continue
        patroni_pid pid "$k"
        [[ -n $pid ]] && pids+=("$pid")
    done
    # Patroni stops its PostgreSQL on SIGTERM (fast shutdown) before it exits.
    stopped=${#pids[@]}
    fleet_stop TERM "${pids[@]}" >/dev/null
    for dir in "$FLEET_DIR"/hosts/db*; do
        k=${dir##*/db}
        [[ $k =~ ^[0-9]+$ ]] || continue
        postmaster_pid pid "$k"
        if [[ -n $pid ]]; then fleet_stop QUIT "$pid" >/dev/null; fi
    done
    etcd_pid pid
    if [[ -n $pid ]]; then fleet_stop TERM "$pid" >/dev/null; fi
    if ((purge)); then
        bash "$FLEET_SCRIPT_DIR/down.sh" --purge >/dev/null
        if [[ -f $FLEET_INVENTORY ]] && head -n 1 "$FLEET_INVENTORY" | grep -q "^$INVENTORY_HEADER"; then
            rm -f "$FLEET_INVENTORY"
        fi
    else
        bash "$FLEET_SCRIPT_DIR/down.sh" >/dev/null
    fi
    printf 'patroni: stopped %d members and etcd%s\n' "$stopped" "$( ((purge)) && echo "; removed $FLEET_DIR")"
}

case ${1:-} in
up)
    shift
    (($# <= 1)) || usage
    cmd_up "$@"
    ;;
down)
    shift
    (($# <= 1)) || usage
    cmd_down "$@"
    ;;
ctl)
    shift
    exec runuser -u postgres -- "$PATRONI_VENV/bin/patronictl" -c "$FLEET_DIR/hosts/db1/patroni.yml" "$@"
    ;;
*) usage ;;
esac
