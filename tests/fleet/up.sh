#!/usr/bin/env bash
# Start (or resize, or repair) the local test fleet: N hosts db1..dbN, each its own sshd on its own
# loopback address, port 22, key-only root login, and its own PostgreSQL 15 cluster listening on
# that address, port 5432. Idempotent: running it again leaves exactly N healthy hosts (dead sshds
# restarted; healthy clusters kept, stopped ones started, broken ones recreated; hosts above N
# stopped and their clusters dropped). Needs root.
#
# Usage: tests/fleet/up.sh N [--no-postgres] [--edb K] [--cast M] [--cap W:K] [--fixtures DIR]
#   --no-postgres  (anywhere in the arguments) SSH-only hosts: no cluster is created or started,
#                  clusters this fleet already has are stopped (those of hosts above N dropped), and
#                  the fleet's /etc/hosts block is removed.
#   --edb K        host dbK (K <= N) gets an EDB-layout cluster instead of a Debian one: initdb as OS
#                  user enterprisedb (created if missing), configuration in the data directory, port
#                  5444, started with pg_ctl (lib.sh, "EDB layout"). Without it, a host that had one
#                  gets its Debian cluster back.
#   --cast M       (anywhere) also hosts cast1..castM (M <= 254): CAST Imaging component nodes, sshd
#                  only (no PostgreSQL), on 127.NET.255.K, in group cast_imaging of the inventory,
#                  with the OS user castsvc (created if missing) and group variables that point the
#                  role cast_imaging_client's system paths into the host's fleet_root. Without
#                  --cast (M = 0) cast hosts this fleet has are stopped.
#   --cap W:K      (anywhere) also CAP VMs, sshd only: capweb1..capwebW (group cap_web, on
#                  127.NET.253.K) and capworker1..capworkerK (group cap_worker, on 127.NET.252.K),
#                  both children of group cap, with the OS user capsvc (created if missing) and group
#                  variables that point the role cap's system paths into the host's fleet_root (the
#                  client files into one folder all of them share, $FLEET_DIR/cap-ssl, so that the
#                  configuration is the same bytes on every VM). W, K <= 254; with --cap, N <= 251*254.
#                  Without --cap, CAP VMs this fleet has are stopped.
#   --fixtures DIR (anywhere) every host's sessions find DIR first on their PATH, with the
#                  variables recording test fixtures read (lib.sh, fleet_fixture_env); the log they
#                  share is $FLEET_DIR/fixtures/calls.log. Without it, sessions get sshd's PATH.
# Writes the fleet state to $CASTELLAN_FLEET_DIR (default tests/fleet/.state) and an Ansible YAML
# inventory (default tests/fleet/inventory.yml); see lib.sh for the environment variables, the
# address scheme and the cluster layout. Stop the fleet with tests/fleet/down.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FLEET_JOBS=${CASTELLAN_FLEET_JOBS:-32}
# Clusters created or started at a time (initdb and start-up are a few seconds each, mostly waiting).
FLEET_PG_JOBS=${CASTELLAN_FLEET_PG_JOBS:-8}

# CAST Imaging nodes (--cast): the OS user the role cast_imaging_client gives the client files to.
FLEET_CAST_USER=castsvc
# CAP VMs (--cap): the OS user CAP runs as (owner of its configuration and client files).
FLEET_CAP_USER=capsvc

# host_config VAR NAME: set VAR to the sshd_config of host NAME (dbK, castK, capwebK, capworkerK).
# SetEnv: sshd takes the first SetEnv line only, so every variable is on it.
host_config() {
    local _hc_addr _hc_dir=$FLEET_DIR/hosts/$2 _hc_env
    fleet_host_addr _hc_addr "$2"
    fleet_fixture_env _hc_env "$2"
    printf -v "$1" '%s\n' \
        "# castellan test fleet host $2 (written by tests/fleet/up.sh; edits are overwritten)" \
        "ListenAddress $_hc_addr:22" \
        "HostKey $_hc_dir/ssh_host_ed25519_key" \
        "PidFile $_hc_dir/sshd.pid" \
        "PermitRootLogin prohibit-password" \
        "PubkeyAuthentication yes" \
        "PasswordAuthentication no" \
        "KbdInteractiveAuthentication no" \
        "UsePAM no" \
        "StrictModes no" \
        "AuthorizedKeysFile $FLEET_AUTHORIZED_KEYS" \
        "SetEnv HOME=$_hc_dir/home${_hc_env:+ $_hc_env}" \
        "MaxSessions 10" \
        "Subsystem sftp internal-sftp" \
        "UseDNS no" \
        "PrintMotd no" \
        "PrintLastLog no" \
        "X11Forwarding no" \
        "LogLevel INFO"
}

# start_one NAME: (re)start host NAME (dbK, castK, capwebK, capworkerK). Run in parallel by xargs,
# one process per host.
start_one() {
    local k=$1 dir pid i
    dir=$FLEET_DIR/hosts/$k
    mkdir -p "$dir/root" "$dir/home"
    if [[ ! -s $dir/ssh_host_ed25519_key || ! -s $dir/ssh_host_ed25519_key.pub ]]; then
        rm -f "$dir/ssh_host_ed25519_key" "$dir/ssh_host_ed25519_key.pub"
        ssh-keygen -q -t ed25519 -N '' -C "$k" -f "$dir/ssh_host_ed25519_key" </dev/null
    fi
    local cfg
    host_config cfg "$k"
    printf '%s' "$cfg" >"$dir/sshd_config.new"
    mv -f "$dir/sshd_config.new" "$dir/sshd_config"
    fleet_host_pid pid "$k"
    # Running with an outdated config: restart it.
    if [[ -n $pid ]]; then fleet_stop TERM "$pid" >/dev/null; fi
    rm -f "$dir/sshd.pid"
    if ! "$FLEET_SSHD" -t -f "$dir/sshd_config" 2>"$dir/sshd-t.err"; then
        echo "$k: sshd -t rejected $dir/sshd_config:" >&2
        cat "$dir/sshd-t.err" >&2
        return 1
    fi
    rm -f "$dir/sshd-t.err"
    : >>"$dir/sshd.log"
    local before
    before=$(wc -l <"$dir/sshd.log")
    # sshd binds its address, then daemonizes (the parent exits 0) and the child writes the pid file.
    if ! "$FLEET_SSHD" -f "$dir/sshd_config" -E "$dir/sshd.log" </dev/null >/dev/null 2>&1 9>&-; then
        echo "$k: sshd failed to start; $dir/sshd.log says:" >&2
        tail -n "+$((before + 1))" "$dir/sshd.log" | tail -n 5 >&2
        return 1
    fi
    for ((i = 0; i < 100; i++)); do
        fleet_host_pid pid "$k"
        [[ -n $pid ]] && return 0
        sleep 0.05
    done
    echo "$k: sshd started but no live pid in $dir/sshd.pid; $dir/sshd.log says:" >&2
    tail -n "+$((before + 1))" "$dir/sshd.log" | tail -n 5 >&2
    return 1
}

# pg_tail K FILE: the last lines of FILE, indented, on stderr (a failing step's output).
pg_tail() {
    [[ -s $2 ]] || return 0
    echo "db$1: $2 says:" >&2
    tail -n 8 "$2" | sed 's/^/    /' >&2
}

# pg_healthy K: the cluster of dbK accepts connections on its socket directory and on its address
# (pg_isready, 5 s each). As user postgres: a login that fails (peer auth for root, role "root")
# would put FATAL lines in the server log, where tests look for the server's own complaints; over
# TCP the password request is enough for pg_isready and nothing is logged.
pg_healthy() {
    local addr
    fleet_addr addr "$1"
    runuser -u postgres -- "$FLEET_PG_BIN/pg_isready" -q -h "$FLEET_DIR/hosts/db$1/pgsock" \
        -p "$FLEET_PG_PORT" -U postgres -d postgres -t 5 >/dev/null 2>&1 &&
        "$FLEET_PG_BIN/pg_isready" -q -h "$addr" -p "$FLEET_PG_PORT" -U postgres -d postgres -t 5 \
            >/dev/null 2>&1
}

# pg_conf_d K: the conf.d file of dbK's cluster (listen_addresses, quoted: `pg_createcluster -o` and
# `pg_conftool` write it unquoted, a syntax error for an IP address).
pg_conf_d() {
    local addr
    fleet_addr addr "$1"
    printf '%s
' "# castellan test fleet host db$1 (written by tests/fleet/up.sh; edits are overwritten)" \
        "listen_addresses = '$addr'"
}

# pg_start K: start dbK's cluster with pg_ctlcluster and wait until it answers.
pg_start() {
    local k=$1 name dir
    fleet_pg_name name "$k"
    dir=$FLEET_DIR/hosts/db$k
    if ! pg_ctlcluster "$FLEET_PG_VERSION" "$name" start >"$dir/pg_ctlcluster.out" 2>&1 9>&-; then
        echo "db$k: pg_ctlcluster $FLEET_PG_VERSION $name start failed" >&2
        pg_tail "$k" "$dir/pg_ctlcluster.out"
        return 1
    fi
    rm -f "$dir/pg_ctlcluster.out"
    pg_healthy "$k" || {
        echo "db$k: cluster $FLEET_PG_VERSION/$name started but does not accept connections" >&2
        pg_tail "$k" "$dir/postgresql.log"
        return 1
    }
}

# pg_create K: create dbK's cluster from scratch (data, socket directory and log under the host's
# directory, config in /etc/postgresql/15/NAME, start.conf manual so that the package's init script
# never starts it) and start it.
pg_create() {
    local k=$1 name dir conf out
    fleet_pg_name name "$k"
    dir=$FLEET_DIR/hosts/db$k
    conf=$FLEET_PG_ETC/$name
    # Whatever is left of an earlier cluster (a server still running on a deleted data directory,
    # configuration leftovers) would make pg_createcluster or the start fail.
    fleet_pg_drop "$k"
    install -d -o postgres -g postgres -m 0700 "$dir/pgdata"
    install -d -o postgres -g postgres -m 2775 "$dir/pgsock"
    out=$dir/pg_createcluster.out
    if ! pg_createcluster "$FLEET_PG_VERSION" "$name" -d "$dir/pgdata" -s "$dir/pgsock" \
        -p "$FLEET_PG_PORT" -l "$dir/postgresql.log" --start-conf=manual -e UTF8 --locale C.UTF-8 \
        -- --no-sync >"$out" 2>&1 9>&-; then
        echo "db$k: pg_createcluster $FLEET_PG_VERSION $name failed" >&2
        pg_tail "$k" "$out"
        return 1
    fi
    rm -f "$out"
    pg_conf_d "$k" >"$conf/conf.d/$FLEET_PG_CONF_D"
    chown postgres:postgres "$conf/conf.d/$FLEET_PG_CONF_D"
    pg_start "$k"
}

# pg_one K: bring dbK's cluster to a healthy state; prints "dbK created|recreated|started|kept|
# restarted". Run in parallel by fleet_parallel, one process per host.
pg_one() {
    local k=$1 name dir conf owner why="" pid want current port sock
    fleet_pg_name name "$k"
    dir=$FLEET_DIR/hosts/db$k
    conf=$FLEET_PG_ETC/$name
    owner=$(fleet_pg_owner "$k")
    case $owner in
    none)
        pg_create "$k" || return 1
        echo "db$k created"
        return 0
        ;;
    ours) ;;
    *)
        echo "db$k: cluster $FLEET_PG_VERSION/$name has data directory ${owner#other } instead of" \
            "$dir/pgdata: it belongs to another fleet with CASTELLAN_FLEET_NET=$FLEET_NET; bring that one" \
            "down with down.sh --purge (CASTELLAN_FLEET_DIR set to its dir) or use another NET" >&2
        return 1
        ;;
    esac
    fleet_pg_conf_value port "$conf/postgresql.conf" port
    fleet_pg_conf_value sock "$conf/postgresql.conf" unix_socket_directories
    if [[ ! -f $dir/pgdata/PG_VERSION ]]; then
        why="no $dir/pgdata/PG_VERSION"
    elif [[ $port != "$FLEET_PG_PORT" || $sock != "$dir/pgsock" ]]; then
        why="port '$port' and unix_socket_directories '$sock' in $conf/postgresql.conf"
    fi
    if [[ -z $why ]]; then
        want=$(pg_conf_d "$k")
        current=$(cat "$conf/conf.d/$FLEET_PG_CONF_D" 2>/dev/null) || current=""
        local changed=0
        if [[ $current != "$want" ]]; then
            printf '%s
' "$want" >"$conf/conf.d/$FLEET_PG_CONF_D"
            chown postgres:postgres "$conf/conf.d/$FLEET_PG_CONF_D"
            changed=1
        fi
        fleet_pg_pid pid "$k"
        if [[ -n $pid ]] && ((changed == 0)) && pg_healthy "$k"; then
            echo "db$k kept"
            return 0
        fi
        local what=started
        if [[ -n $pid ]]; then
            what=restarted
            fleet_pg_stop "$k"
        fi
        if pg_start "$k"; then
            echo "db$k $what"
            return 0
        fi
        why="it does not start (see above)"
    fi
    echo "db$k: recreating cluster $FLEET_PG_VERSION/$name: $why" >&2
    # Keep the broken cluster's log for a look (pg_dropcluster deletes the log file).
    if [[ -s $dir/postgresql.log ]]; then cp -f "$dir/postgresql.log" "$dir/postgresql.log.broken"; fi
    pg_create "$k" || return 1
    echo "db$k recreated"
}

# pg_stop_one K: stop dbK's cluster if it is this fleet's (up.sh --no-postgres).
pg_stop_one() {
    [[ $(fleet_pg_owner "$1") == ours ]] || return 0
    fleet_pg_stop "$1"
}

# pg_drop_one K: drop dbK's cluster (host above N) if it is this fleet's; prints "dbK dropped".
pg_drop_one() {
    local owner
    owner=$(fleet_pg_owner "$1")
    [[ $owner == ours || $owner == none ]] || return 0
    fleet_pg_drop "$1"
    [[ $owner == ours ]] && echo "db$1 dropped"
    return 0
}

# edb_conf_d K: the conf.d file of dbK's EDB-layout cluster (address, port, socket directory).
edb_conf_d() {
    local addr
    fleet_addr addr "$1"
    printf '%s\n' "# castellan test fleet host db$1, EDB layout (written by tests/fleet/up.sh; edits are overwritten)" \
        "listen_addresses = '$addr'" \
        "port = $FLEET_EDB_PORT" \
        "unix_socket_directories = '$FLEET_DIR/hosts/db$1/pgsock'"
}

# edb_healthy K: dbK's EDB-layout cluster answers on its socket directory and on its address.
edb_healthy() {
    local addr
    fleet_addr addr "$1"
    runuser -u "$FLEET_EDB_USER" -- "$FLEET_PG_BIN/pg_isready" -q -h "$FLEET_DIR/hosts/db$1/pgsock" \
        -p "$FLEET_EDB_PORT" -U "$FLEET_EDB_USER" -d postgres -t 5 >/dev/null 2>&1 &&
        "$FLEET_PG_BIN/pg_isready" -q -h "$addr" -p "$FLEET_EDB_PORT" -U "$FLEET_EDB_USER" -d postgres \
            -t 5 >/dev/null 2>&1
}

# edb_start K: start dbK's EDB-layout cluster with pg_ctl and wait until it answers.
edb_start() {
    local k=$1 dir=$FLEET_DIR/hosts/db$1
    # pg_ctl -l: the server (enterprisedb) appends to it; the host's directory is root's.
    [[ -f $dir/postgresql.log ]] || install -o "$FLEET_EDB_USER" -g "$FLEET_EDB_USER" -m 0600 /dev/null "$dir/postgresql.log"
    chown "$FLEET_EDB_USER:$FLEET_EDB_USER" "$dir/postgresql.log"
    if ! fleet_edb_ctl "$k" start -w -t 60 >"$dir/pg_ctl.out" 2>&1; then
        echo "db$k: pg_ctl start (EDB layout) failed" >&2
        pg_tail "$k" "$dir/pg_ctl.out"
        pg_tail "$k" "$dir/postgresql.log"
        return 1
    fi
    rm -f "$dir/pg_ctl.out"
    edb_healthy "$k" || {
        echo "db$k: the EDB-layout cluster started but does not accept connections" >&2
        pg_tail "$k" "$dir/postgresql.log"
        return 1
    }
}

# edb_create K: make dbK's EDB-layout cluster from scratch (a Debian cluster of the host, or an
# earlier EDB-layout one, is dropped first) and start it.
edb_create() {
    local k=$1 dir=$FLEET_DIR/hosts/db$1 out
    fleet_pg_drop "$k"
    fleet_edb_user
    install -d -o "$FLEET_EDB_USER" -g "$FLEET_EDB_USER" -m 0700 "$dir/pgdata"
    install -d -o "$FLEET_EDB_USER" -g "$FLEET_EDB_USER" -m 2775 "$dir/pgsock"
    out=$dir/initdb.out
    if ! runuser -u "$FLEET_EDB_USER" -- "$FLEET_PG_BIN/initdb" -D "$dir/pgdata" -U "$FLEET_EDB_USER" \
        -E UTF8 --locale C.UTF-8 --auth-local=peer --auth-host=scram-sha-256 --no-sync \
        >"$out" 2>&1 9>&-; then
        echo "db$k: initdb (EDB layout) failed" >&2
        pg_tail "$k" "$out"
        return 1
    fi
    rm -f "$out"
    install -d -o "$FLEET_EDB_USER" -g "$FLEET_EDB_USER" -m 0700 "$dir/pgdata/conf.d"
    edb_conf_d "$k" >"$dir/pgdata/conf.d/$FLEET_PG_CONF_D"
    printf "\ninclude_dir = 'conf.d'\t# castellan test fleet (tests/fleet/up.sh)\n" >>"$dir/pgdata/postgresql.conf"
    chown "$FLEET_EDB_USER:$FLEET_EDB_USER" "$dir/pgdata/conf.d/$FLEET_PG_CONF_D"
    edb_start "$k"
}

# edb_one K: bring dbK's EDB-layout cluster to a healthy state; prints "dbK created|recreated|
# started|kept|restarted", like pg_one.
edb_one() {
    local k=$1 dir=$FLEET_DIR/hosts/db$1 owner pid want current what=started name
    owner=$(fleet_pg_owner "$k")
    case $owner in
    none) ;;
    ours)
        edb_create "$k" || return 1
        echo "db$k recreated"
        return 0
        ;;
    *)
        fleet_pg_name name "$k"
        echo "db$k: cluster $FLEET_PG_VERSION/$name has data directory ${owner#other } instead of" \
            "$dir/pgdata: it belongs to another fleet with CASTELLAN_FLEET_NET=$FLEET_NET" >&2
        return 1
        ;;
    esac
    if ! fleet_edb_is "$k" || [[ ! -f $dir/pgdata/PG_VERSION ]]; then
        edb_create "$k" || return 1
        echo "db$k created"
        return 0
    fi
    want=$(edb_conf_d "$k")
    current=$(cat "$dir/pgdata/conf.d/$FLEET_PG_CONF_D" 2>/dev/null) || current=""
    local changed=0
    if [[ $current != "$want" ]]; then
        mkdir -p "$dir/pgdata/conf.d"
        printf '%s\n' "$want" >"$dir/pgdata/conf.d/$FLEET_PG_CONF_D"
        chown -R "$FLEET_EDB_USER:$FLEET_EDB_USER" "$dir/pgdata/conf.d"
        changed=1
    fi
    fleet_edb_pid pid "$k"
    if [[ -n $pid ]] && ((changed == 0)) && edb_healthy "$k"; then
        echo "db$k kept"
        return 0
    fi
    if [[ -n $pid ]]; then
        what=restarted
        fleet_edb_stop "$k"
    fi
    if edb_start "$k"; then
        echo "db$k $what"
        return 0
    fi
    echo "db$k: recreating its EDB-layout cluster: it does not start (see above)" >&2
    if [[ -s $dir/postgresql.log ]]; then cp -f "$dir/postgresql.log" "$dir/postgresql.log.broken"; fi
    edb_create "$k" || return 1
    echo "db$k recreated"
}

# pg_or_edb_one K: edb_one for the --edb host, pg_one for the others.
pg_or_edb_one() {
    if [[ $1 == "$EDB_K" ]]; then edb_one "$1"; else pg_one "$1"; fi
}

# scale_limits TOTAL: make this machine able to run TOTAL hosts (tests/fleet/README.md, "Many
# hosts"). Processes: one sshd per host, and per open connection up to 2 sshd and a shell on the host
# side and the ssh master on the client side: 4 per host and room for the rest of the machine.
# Open files: the sshds inherit this shell's limit (a handful each); the clients (castellan, ssh,
# the benchmark) are started by the caller, whose `ulimit -n` must cover its connections.
scale_limits() {
    local total=$1 want have
    want=$((total * 4 + 8192))
    have=$(cat /proc/sys/kernel/pid_max)
    if ((have < want)); then
        if { echo "$want" >/proc/sys/kernel/pid_max; } 2>/dev/null; then
            echo "up.sh: kernel.pid_max $have -> $want for $total hosts" >&2
        else
            fleet_die "kernel.pid_max is $have, $total hosts need $want: sysctl -w kernel.pid_max=$want"
        fi
    fi
    have=$(cat /proc/sys/kernel/threads-max)
    ((have >= want)) || fleet_die "kernel.threads-max is $have, $total hosts need $want: sysctl -w kernel.threads-max=$want"
    have=$(ulimit -u)
    [[ $have == unlimited ]] || ((have >= want)) || ulimit -u "$want" 2>/dev/null ||
        fleet_die "ulimit -u is $have, $total hosts need $want processes of root"
    want=$((total * 8 + 1024))
    have=$(ulimit -n)
    [[ $have == unlimited ]] || ((have >= want)) || ulimit -n "$want" 2>/dev/null ||
        fleet_die "ulimit -n is $have (hard $(ulimit -Hn)), $total hosts need $want"
}

if [[ ${1:-} == --start-one ]]; then
    start_one "$2"
    exit
fi

postgres=1
EDB_K=""
M=0
CAP_W=0
CAP_K=0
FLEET_FIXTURES=""
args=()
usage() {
    echo "usage: $0 N [--no-postgres] [--edb K] [--cast M] [--cap W:K] [--fixtures DIR]   (start hosts db1..dbN, cast1..castM, capweb1..capwebW, capworker1..capworkerK; N=0 stops all db hosts)" >&2
    exit 2
}
while (($# > 0)); do
    case $1 in
    --no-postgres) postgres=0 ;;
    --edb)
        (($# >= 2)) || { echo "$0: --edb needs a host number K" >&2; exit 2; }
        EDB_K=$2
        shift
        ;;
    --edb=*) EDB_K=${1#--edb=} ;;
    --cast)
        (($# >= 2)) && [[ $2 =~ ^[0-9]+$ ]] || usage
        M=$((10#$2))
        shift
        ;;
    --cap)
        (($# >= 2)) && [[ $2 =~ ^[0-9]+:[0-9]+$ ]] || usage
        CAP_W=$((10#${2%%:*}))
        CAP_K=$((10#${2#*:}))
        shift
        ;;
    --fixtures)
        (($# >= 2)) || usage
        [[ -d $2 ]] || fleet_die "--fixtures $2: not a directory"
        FLEET_FIXTURES=$(cd "$2" && pwd)
        [[ $FLEET_FIXTURES =~ ^[[:alnum:]/._+@,=-]+$ ]] ||
            fleet_die "--fixtures $FLEET_FIXTURES: only letters, digits and / . _ + @ , = - (it goes into sshd_config)"
        shift
        ;;
    *) args+=("$1") ;;
    esac
    shift
done
[[ ${#args[@]} -eq 1 && ${args[0]} =~ ^[0-9]+$ ]] || usage
N=$((10#${args[0]}))
if [[ -n $EDB_K ]]; then
    [[ $EDB_K =~ ^[0-9]+$ ]] && ((10#$EDB_K >= 1 && 10#$EDB_K <= N)) ||
        { echo "$0: --edb K needs 1 <= K <= N ($N), got '$EDB_K'" >&2; exit 2; }
    EDB_K=$((10#$EDB_K))
    ((postgres)) || { echo "$0: --edb and --no-postgres exclude each other" >&2; exit 2; }
fi
((N <= 254 * 254)) || fleet_die "at most $((254 * 254)) hosts"
((M <= 254)) || fleet_die "at most 254 cast hosts"
((CAP_W <= 254 && CAP_K <= 254)) || fleet_die "at most 254 CAP web and 254 CAP worker hosts"
((CAP_W + CAP_K == 0 || N <= 251 * 254)) || fleet_die "with --cap, at most $((251 * 254)) db hosts"
# The --start-one processes build the same sshd_config.
export FLEET_FIXTURES
[[ $(id -u) == 0 ]] || fleet_die "must run as root (sshd on port 22, root logins)"
if ((postgres && N > 0)); then
    # The server's socket path: at most 107 bytes (sockaddr_un).
    sock_path="$FLEET_DIR/hosts/db$N/pgsock/.s.PGSQL.$FLEET_PG_PORT"
    ((${#sock_path} <= 107)) ||
        fleet_die "socket path $sock_path is longer than 107 bytes: use a shorter CASTELLAN_FLEET_DIR"
fi

SECONDS_START=$(date +%s.%N)

install=()
if [[ ! -x $FLEET_SSHD ]] || ! command -v ssh-keygen >/dev/null || ! command -v ssh >/dev/null; then
    install+=(openssh-server openssh-client)
fi
if ((postgres)) && ! fleet_pg_installed; then install+=(postgresql); fi
if ((${#install[@]} > 0)); then
    echo "up.sh: installing ${install[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${install[@]}" >&2
    if ((postgres)) && ! fleet_pg_installed; then
        fleet_die "no PostgreSQL $FLEET_PG_VERSION server in $FLEET_PG_BIN after installing postgresql"
    fi
fi
mkdir -p /run/sshd
chmod 0755 /run/sshd
scale_limits $((N + M + CAP_W + CAP_K))

mkdir -p "$FLEET_DIR/hosts"
if ((postgres)); then
    # User postgres must reach the data and socket directories under hosts/dbK.
    chmod a+x "$FLEET_DIR" "$FLEET_DIR/hosts"
    runuser -u postgres -- test -x "$FLEET_DIR/hosts" ||
        fleet_die "user postgres cannot reach $FLEET_DIR/hosts (a parent directory lacks o+x): use another CASTELLAN_FLEET_DIR"
fi
# One up/down/kill at a time per fleet dir. Started sshds get fd 9 closed (see start_one).
exec 9>"$FLEET_DIR/.lock"
flock 9

if [[ ! -s $FLEET_KEY || ! -s $FLEET_KEY.pub ]]; then
    rm -f "$FLEET_KEY" "$FLEET_KEY.pub"
    ssh-keygen -q -t ed25519 -N '' -C castellan-fleet-client -f "$FLEET_KEY" </dev/null
fi
cp "$FLEET_KEY.pub" "$FLEET_AUTHORIZED_KEYS.new"
mv -f "$FLEET_AUTHORIZED_KEYS.new" "$FLEET_AUTHORIZED_KEYS"

if ((M > 0)); then
    # The component nodes' service user (one for every fleet on this machine; never removed).
    if ! id -u "$FLEET_CAST_USER" >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
            "$FLEET_CAST_USER" 2>/dev/null || id -u "$FLEET_CAST_USER" >/dev/null 2>&1 ||
            fleet_die "cannot create the OS user $FLEET_CAST_USER"
    fi
    # castsvc reaches its files under hosts/castK/root (psql and java run as castsvc there).
    chmod a+x "$FLEET_DIR" "$FLEET_DIR/hosts"
fi
if ((CAP_W + CAP_K > 0)); then
    # CAP's service user (one for every fleet on this machine; never removed).
    if ! id -u "$FLEET_CAP_USER" >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
            "$FLEET_CAP_USER" 2>/dev/null || id -u "$FLEET_CAP_USER" >/dev/null 2>&1 ||
            fleet_die "cannot create the OS user $FLEET_CAP_USER"
    fi
    # capsvc reaches its files under hosts/NAME/root and the shared cap-ssl (psql runs as capsvc).
    chmod a+x "$FLEET_DIR" "$FLEET_DIR/hosts"
fi
if [[ -n $FLEET_FIXTURES ]]; then mkdir -p "$FLEET_DIR/fixtures"; fi

# Stop hosts above N (dbK), M (castK), W (capwebK) and K (capworkerK).
stop_pids=()
stopped=0
for dir in "$FLEET_DIR"/hosts/db* "$FLEET_DIR"/hosts/cast* "$FLEET_DIR"/hosts/cap*; do
    [[ -d $dir ]] || continue
    name=${dir##*/}
    case $name in
    db*) k=${name#db} max=$N ;;
    cast*) k=${name#cast} max=$M ;;
    capweb*) k=${name#capweb} max=$CAP_W ;;
    capworker*) k=${name#capworker} max=$CAP_K ;;
    *) continue ;;
    esac
    if ! [[ $k =~ ^[0-9]+$ ]] || ((k <= max)); then continue; fi
    fleet_host_pid pid "$name"
    if [[ -n $pid ]]; then
        stop_pids+=("$pid")
        stopped=$((stopped + 1))
    fi
    rm -f "$dir/sshd.pid"
done
fleet_stop TERM "${stop_pids[@]}" >/dev/null

# Find hosts that need (re)starting: not running, or running with a config that is not current.
todo=()
addr="" want="" name="" dns=""
all_hosts=()
for ((k = 1; k <= N; k++)); do all_hosts+=("db$k"); done
for ((k = 1; k <= M; k++)); do all_hosts+=("cast$k"); done
cap_hosts=()
for ((k = 1; k <= CAP_W; k++)); do cap_hosts+=("capweb$k"); done
for ((k = 1; k <= CAP_K; k++)); do cap_hosts+=("capworker$k"); done
all_hosts+=("${cap_hosts[@]}")
for h in "${all_hosts[@]}"; do
    dir=$FLEET_DIR/hosts/$h
    fleet_host_pid pid "$h"
    if [[ -n $pid ]]; then
        current=""
        { IFS= read -r -d '' current <"$dir/sshd_config"; } 2>/dev/null || true
        host_config want "$h"
        [[ $current == "$want" ]] && continue
    fi
    todo+=("$h")
done
# A cast node's work directory: castsvc must reach the files the role puts under it.
for ((k = 1; k <= M; k++)); do
    mkdir -p "$FLEET_DIR/hosts/cast$k/root"
    chmod a+x "$FLEET_DIR/hosts/cast$k"
    chmod 0755 "$FLEET_DIR/hosts/cast$k/root"
done
# The same for a CAP VM and capsvc.
for h in "${cap_hosts[@]}"; do
    mkdir -p "$FLEET_DIR/hosts/$h/root"
    chmod a+x "$FLEET_DIR/hosts/$h"
    chmod 0755 "$FLEET_DIR/hosts/$h/root"
done

failed=0
if ((${#todo[@]} > 0)); then
    printf '%s\n' "${todo[@]}" |
        xargs -P "$FLEET_JOBS" -n 1 "$FLEET_SCRIPT_DIR/up.sh" --start-one 9>&- || failed=1
fi

# PostgreSQL: drop the clusters of hosts above N, then make db1..dbN's healthy (or, with
# --no-postgres, stopped), in parallel.
pg_results=""
if fleet_pg_installed; then
    above=()
    while read -r k; do ((k > N)) && above+=("$k"); done < <(fleet_pg_ks)
    if ((${#above[@]} > 0)); then
        pg_results+=$(fleet_parallel "$FLEET_PG_JOBS" pg_drop_one "${above[@]}")$'\n' || failed=1
    fi
    # EDB-layout clusters of hosts above N, and all of them with --no-postgres.
    for dir in "$FLEET_DIR"/hosts/db*; do
        k=${dir##*/db}
        [[ $k =~ ^[0-9]+$ ]] && fleet_edb_is "$k" || continue
        if ((k > N)); then
            fleet_edb_drop "$k"
            pg_results+="db$k dropped"$'\n'
        elif ((!postgres)); then
            fleet_edb_stop "$k"
        fi
    done
fi
if ((postgres)); then
    fleet_etc_hosts "$N"
    all=()
    for ((k = 1; k <= N; k++)); do
        mkdir -p "$FLEET_DIR/hosts/db$k"
        chmod a+x "$FLEET_DIR/hosts/db$k"
        all+=("$k")
    done
    if ((N > 0)); then
        pg_results+=$(fleet_parallel "$FLEET_PG_JOBS" pg_or_edb_one "${all[@]}") || failed=1
    fi
else
    fleet_etc_hosts 0 || true
    if fleet_pg_installed; then
        below=()
        while read -r k; do ((k <= N)) && below+=("$k"); done < <(fleet_pg_ks)
        if ((${#below[@]} > 0)); then fleet_parallel "$FLEET_PG_JOBS" pg_stop_one "${below[@]}" || failed=1; fi
    fi
fi

# known_hosts and inventory for db1..dbN, each replaced atomically.
{
    for ((k = 1; k <= N; k++)); do
        fleet_addr addr "$k"
        read -r type key _ <"$FLEET_DIR/hosts/db$k/ssh_host_ed25519_key.pub"
        printf '%s %s %s\n' "$addr" "$type" "$key"
    done
    for ((k = 1; k <= M; k++)); do
        fleet_cast_addr addr "$k"
        read -r type key _ <"$FLEET_DIR/hosts/cast$k/ssh_host_ed25519_key.pub"
        printf '%s %s %s\n' "$addr" "$type" "$key"
    done
    for h in "${cap_hosts[@]}"; do
        fleet_host_addr addr "$h"
        read -r type key _ <"$FLEET_DIR/hosts/$h/ssh_host_ed25519_key.pub"
        printf '%s %s %s\n' "$addr" "$type" "$key"
    done
} >"$FLEET_KNOWN_HOSTS.new"
mv -f "$FLEET_KNOWN_HOSTS.new" "$FLEET_KNOWN_HOSTS"

mkdir -p "$(dirname "$FLEET_INVENTORY")"
{
    cast_args=""
    ((M == 0)) || cast_args=" --cast $M"
    ((CAP_W + CAP_K == 0)) || cast_args+=" --cap $CAP_W:$CAP_K"
    [[ -z $FLEET_FIXTURES ]] || cast_args+=" --fixtures $FLEET_FIXTURES"
    printf '# Written by tests/fleet/up.sh %d%s (fleet dir %s); edits are overwritten.\n' "$N" "$cast_args" "$FLEET_DIR"
    printf 'all:\n  children:\n    fleet:\n'
    if ((postgres)); then
        # The hosts are in group postgres, a child of fleet (playbooks for `fleet` still see them).
        printf '      children:\n        postgres:\n          hosts:\n'
        ((N > 0)) || printf '            {}\n'
        for ((k = 1; k <= N; k++)); do
            fleet_addr addr "$k"
            fleet_pg_name name "$k"
            fleet_dns_name dns "$k"
            dir=$FLEET_DIR/hosts/db$k
            printf '            db%d:\n' "$k"
            if [[ $k == "$EDB_K" ]]; then
                # Host variables win over the group's: the EDB layout's own port, user and control.
                printf '              %s: %s\n' \
                    ansible_host "$addr" \
                    fleet_root "\"$dir/root\"" \
                    pg_dns_name "$dns" \
                    pg_data_dir "\"$dir/pgdata\"" \
                    pg_socket_dir "\"$dir/pgsock\"" \
                    pg_config_dir "\"$dir/pgdata\"" \
                    pg_log_file "\"$dir/postgresql.log\"" \
                    pg_port "$FLEET_EDB_PORT" \
                    pg_os_user "$FLEET_EDB_USER" \
                    pg_service_method pg_ctl \
                    pg_layout edb
                continue
            fi
            printf '              %s: %s\n' \
                ansible_host "$addr" \
                fleet_root "\"$dir/root\"" \
                pg_cluster "$name" \
                pg_dns_name "$dns" \
                pg_data_dir "\"$dir/pgdata\"" \
                pg_socket_dir "\"$dir/pgsock\"" \
                pg_config_dir "\"$FLEET_PG_ETC/$name\"" \
                pg_log_file "\"$dir/postgresql.log\""
        done
        printf '          vars:\n'
        printf '            %s: %s\n' \
            pg_version "$FLEET_PG_VERSION" \
            pg_port "$FLEET_PG_PORT" \
            pg_service_method pg_ctlcluster \
            pg_os_user postgres \
            pg_bin_dir "$FLEET_PG_BIN"
    else
        printf '      hosts:\n'
        ((N > 0)) || printf '        {}\n'
        for ((k = 1; k <= N; k++)); do
            fleet_addr addr "$k"
            printf '        db%d: {ansible_host: %s, fleet_root: "%s/root"}\n' "$k" "$addr" "$FLEET_DIR/hosts/db$k"
        done
    fi
    if ((M > 0)); then
        # CAST Imaging component nodes: a second child of fleet. Hosts share this machine's
        # filesystem, so every system path of the role points into the host's own fleet_root.
        ((postgres)) || printf '      children:\n'
        printf '        cast_imaging:\n          hosts:\n'
        for ((k = 1; k <= M; k++)); do
            fleet_cast_addr addr "$k"
            printf '            cast%d: {ansible_host: %s, fleet_root: "%s/root"}\n' "$k" "$addr" "$FLEET_DIR/hosts/cast$k"
        done
        printf '          vars:\n'
        printf '            %s: %s\n' \
            cast_service_user "$FLEET_CAST_USER" \
            cast_db_user postgres \
            cast_ssl_dir '"{{ fleet_root }}/etc/cast-imaging/ssl"' \
            cast_ini_path '"{{ fleet_root }}/etc/cast-imaging/SSLParameters.ini"' \
            cast_environment_file '"{{ fleet_root }}/etc/environment"' \
            cast_systemd_dir '"{{ fleet_root }}/etc/systemd/system"'
    fi
    if ((CAP_W + CAP_K > 0)); then
        # CAP VMs: group cap, its children cap_web and cap_worker (role cap). System paths point
        # into the host's fleet_root; the client files go to one folder the VMs share, so that
        # DATABASE_URL (which names them) and the configuration are the same on every VM.
        ((postgres || M > 0)) || printf '      children:\n'
        printf '        cap:\n          children:\n'
        for kind in web worker; do
            printf '            cap_%s:\n              hosts:\n' "$kind"
            n=$CAP_W
            [[ $kind == worker ]] && n=$CAP_K
            ((n > 0)) || printf '                {}\n'
            for ((k = 1; k <= n; k++)); do
                fleet_host_addr addr "cap$kind$k"
                printf '                cap%s%d: {ansible_host: %s, fleet_root: "%s/root"}\n' \
                    "$kind" "$k" "$addr" "$FLEET_DIR/hosts/cap$kind$k"
            done
        done
        printf '          vars:\n'
        printf '            %s: %s\n' \
            cap_service_user "$FLEET_CAP_USER" \
            cap_config_dir '"{{ fleet_root }}/etc/cryptosense-analyzer"' \
            cap_ssl_dir "\"$FLEET_DIR/cap-ssl\"" \
            cap_package_stage_dir '"{{ fleet_root }}/var/tmp/castellan-cap"' \
            cap_state_dir '"{{ fleet_root }}/var/lib/castellan/cap"'
    fi
    printf '      vars:\n'
    printf '        ansible_user: root\n'
    printf '        ansible_ssh_private_key_file: "%s"\n' "$FLEET_KEY"
    # Loopback test hosts share this machine's 2 cores with their clients: the default
    # post-quantum key exchange (sntrup761) costs ~70 ms of CPU on each side per connection,
    # curve25519 ~10 ms. Real fleets keep OpenSSH's default.
    printf '        ansible_ssh_common_args: "-o UserKnownHostsFile=%s -o KexAlgorithms=curve25519-sha256"\n' "$FLEET_KNOWN_HOSTS"
    printf '        castellan_known_hosts: "%s"\n' "$FLEET_KNOWN_HOSTS"
    printf '        fleet_dir: "%s"\n' "$FLEET_DIR"
} >"$FLEET_INVENTORY.new"
mv -f "$FLEET_INVENTORY.new" "$FLEET_INVENTORY"

first="" last=""
# Wait until every host accepts connections on port 22 (10 s in all): its socket is listening (one
# `ss` call for the whole fleet), or, without ss, it answers a TCP connection with an SSH banner.
deadline=$(($(date +%s) + 10))
while :; do
    down=()
    if command -v ss >/dev/null; then
        declare -A listening=()
        while read -r _ _ _ local _; do listening[$local]=1; done < <(ss -ltnH 'sport = :22')
        for h in "${all_hosts[@]}"; do
            fleet_host_addr addr "$h"
            [[ -n ${listening[$addr:22]:-} ]] || down+=("$h")
        done
    else
        for h in "${all_hosts[@]}"; do
            fleet_host_addr addr "$h"
            fleet_probe "$addr" || down+=("$h")
        done
    fi
    ((${#down[@]} == 0 || $(date +%s) >= deadline)) && break
    sleep 0.1
done
if ((${#down[@]} > 0)); then
    fleet_die "not accepting connections on port 22: ${down[*]} (see $FLEET_DIR/hosts/NAME/sshd.log)"
fi
((failed == 0)) || fleet_die "some hosts failed to start (see above)"

# One real login, strict host key checking, to prove key, known_hosts and config fit together.
logins=()
((N >= 1)) && logins+=(db1 "db$N")
((M >= 1)) && logins+=(cast1 "cast$M")
((CAP_W >= 1)) && logins+=(capweb1)
((CAP_K >= 1)) && logins+=("capworker$CAP_K")
for h in "${logins[@]}"; do
    fleet_host_addr addr "$h"
    ssh -n -i "$FLEET_KEY" -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes \
        -o UserKnownHostsFile="$FLEET_KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null \
        -o ControlMaster=no -o ControlPath=none -o ConnectTimeout=5 \
        "root@$addr" true 9>&- ||
        fleet_die "ssh root@$addr ($h) failed"
done

elapsed=$(awk -v a="$SECONDS_START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
range="no hosts"
if ((N > 0)); then
    fleet_addr first 1
    fleet_addr last "$N"
    range="db1..db$N at $first..$last:22"
fi
pg_summary="postgres: off"
if [[ $pg_results == *" dropped"* ]]; then pg_summary+=" ($(grep -c " dropped\$" <<<"$pg_results") dropped)"; fi
if ((postgres)); then
    pg_summary="postgres:"
    for what in created recreated started restarted kept dropped; do
        pg_summary+=" $(grep -c " $what\$" <<<"$pg_results" || true) $what,"
    done
    pg_summary=${pg_summary%,}
fi
if ((M > 0)); then
    fleet_cast_addr first 1
    fleet_cast_addr last "$M"
    if ((N > 0)); then range+=", "; else range=""; fi
    range+="cast1..cast$M at $first..$last:22"
fi
for kind in web worker; do
    n=$CAP_W
    [[ $kind == worker ]] && n=$CAP_K
    ((n > 0)) || continue
    fleet_host_addr first "cap${kind}1"
    fleet_host_addr last "cap$kind$n"
    [[ -z $range || $range == "no hosts" ]] && range="" || range+=", "
    range+="cap${kind}1..cap$kind$n at $first..$last:22"
done
total=$((N + M + CAP_W + CAP_K))
printf 'fleet: %d hosts up (%s), %d started, %d kept, %d stopped; %s; in %ss; inventory %s\n' \
    "$total" "$range" "${#todo[@]}" $((total - ${#todo[@]})) "$stopped" "$pg_summary" "$elapsed" "$FLEET_INVENTORY"
