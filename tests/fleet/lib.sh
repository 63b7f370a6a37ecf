# shellcheck shell=bash
# Shared helpers for tests/fleet/{up,down,kill,pg}.sh. Sourced, not executed.
#
# Environment:
#   CASTELLAN_FLEET_DIR        state directory (default: tests/fleet/.state)
#   CASTELLAN_FLEET_INVENTORY  inventory file to write (default: tests/fleet/inventory.yml, or
#                              $CASTELLAN_FLEET_DIR/inventory.yml when CASTELLAN_FLEET_DIR is set)
#   CASTELLAN_FLEET_NET        second octet of the host addresses (default 0); a second fleet
#                              running at the same time needs its own value
#
# Host dbK listens on 127.NET.(1 + (K-1)/254).(1 + (K-1)%254) port 22:
# db1 = 127.0.1.1 ... db254 = 127.0.1.254, db255 = 127.0.2.1, ...
# Host castK (up.sh --cast M, SSH only, K <= 254) listens on 127.NET.255.K: third octet 255 is
# never a db address (dbK's third octet is at most 254). The CAP VMs of up.sh --cap W:K (SSH only,
# W, K <= 254): capwebK on 127.NET.253.K, capworkerK on 127.NET.252.K (with them, N <= 251*254, so
# that no dbK has those third octets).
#
# PostgreSQL (unless up.sh --no-postgres): host dbK has the Debian cluster 15/fNETdbK (config in
# /etc/postgresql/15/fNETdbK, data in $FLEET_DIR/hosts/dbK/pgdata, socket directory
# $FLEET_DIR/hosts/dbK/pgsock) listening on the host's address port 5432, and the name
# dbK.fNET.fleet.test in a block of /etc/hosts owned by the fleet.

FLEET_SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FLEET_DIR=${CASTELLAN_FLEET_DIR:-$FLEET_SCRIPT_DIR/.state}
case $FLEET_DIR in
/*) ;;
*) FLEET_DIR=$PWD/$FLEET_DIR ;;
esac
FLEET_DIR=${FLEET_DIR%/}
if [[ -n ${CASTELLAN_FLEET_INVENTORY:-} ]]; then
    FLEET_INVENTORY=$CASTELLAN_FLEET_INVENTORY
elif [[ -n ${CASTELLAN_FLEET_DIR:-} ]]; then
    FLEET_INVENTORY=$FLEET_DIR/inventory.yml
else
    FLEET_INVENTORY=$FLEET_SCRIPT_DIR/inventory.yml
fi
case $FLEET_INVENTORY in
/*) ;;
*) FLEET_INVENTORY=$PWD/$FLEET_INVENTORY ;;
esac
FLEET_NET=${CASTELLAN_FLEET_NET:-0}
# shellcheck disable=SC2034 # used by the scripts that source this file
{
    FLEET_SSHD=/usr/sbin/sshd
    FLEET_KEY=$FLEET_DIR/id_ed25519
    FLEET_KNOWN_HOSTS=$FLEET_DIR/known_hosts
    FLEET_AUTHORIZED_KEYS=$FLEET_DIR/authorized_keys
    FLEET_PG_VERSION=15
    FLEET_PG_BIN=/usr/lib/postgresql/15/bin
    FLEET_PG_PORT=5432
    FLEET_PG_ETC=/etc/postgresql/15
    FLEET_PG_RUN=/var/run/postgresql
    FLEET_PG_CONF_D=00-castellan-fleet.conf
    FLEET_ETC_HOSTS=/etc/hosts
    # up.sh --edb K: host dbK runs an EDB-layout cluster instead (see "EDB layout" below).
    FLEET_EDB_USER=enterprisedb
    FLEET_EDB_PORT=5444
}

fleet_die() {
    printf '%s: %s\n' "${0##*/}" "$*" >&2
    exit 1
}

# Paths end up in sshd_config, ssh -o options and YAML: keep them to characters that need no quoting.
[[ $FLEET_DIR =~ ^[[:alnum:]/._+@,=-]+$ ]] ||
    fleet_die "fleet dir '$FLEET_DIR' must contain only letters, digits and / . _ + @ , = -"
[[ $FLEET_INVENTORY =~ ^[[:alnum:]/._+@,=-]+$ ]] ||
    fleet_die "inventory path '$FLEET_INVENTORY' must contain only letters, digits and / . _ + @ , = -"
if ! [[ $FLEET_NET =~ ^[0-9]+$ ]] || ((FLEET_NET > 255)); then
    fleet_die "CASTELLAN_FLEET_NET must be 0..255, got '$FLEET_NET'"
fi

# fleet_addr VAR K: set VAR to the address of host dbK.
fleet_addr() {
    printf -v "$1" '127.%d.%d.%d' "$FLEET_NET" $((1 + ($2 - 1) / 254)) $((1 + ($2 - 1) % 254))
}

# fleet_cast_addr VAR K: set VAR to the address of host castK.
fleet_cast_addr() {
    printf -v "$1" '127.%d.255.%d' "$FLEET_NET" "$2"
}

# fleet_host_addr VAR NAME: set VAR to the address of host NAME (dbK, castK, capwebK, capworkerK).
fleet_host_addr() {
    case $2 in
    cast*) fleet_cast_addr "$1" "${2#cast}" ;;
    capweb*) printf -v "$1" '127.%d.253.%d' "$FLEET_NET" "${2#capweb}" ;;
    capworker*) printf -v "$1" '127.%d.252.%d' "$FLEET_NET" "${2#capworker}" ;;
    *) fleet_addr "$1" "${2#db}" ;;
    esac
}

# The host names of every kind, for scripts that take one or walk hosts/ (dbK castK capwebK capworkerK).
FLEET_HOST_NAME_RE='^(db|cast|capweb|capworker)[1-9][0-9]*$'

# fleet_fixture_env VAR NAME: set VAR to the environment a session on host NAME gets from
# up.sh --fixtures DIR ($FLEET_FIXTURES; empty without it): DIR first on PATH and the variables the
# recording test fixtures read (tests/fixtures/cap/README.md): CASTELLAN_FIXTURE_HOST (NAME),
# CASTELLAN_FIXTURE_STATE (hosts/NAME/fixture-state), CASTELLAN_FIXTURE_ROOT (hosts/NAME/root),
# CASTELLAN_FIXTURE_LOG ($FLEET_DIR/fixtures/calls.log, one log for the whole fleet).
fleet_fixture_env() {
    local _ffe_dir=$FLEET_DIR/hosts/$2
    printf -v "$1" '%s' ""
    [[ -n ${FLEET_FIXTURES:-} ]] || return 0
    printf -v "$1" '%s %s %s %s %s' \
        "PATH=$FLEET_FIXTURES:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        "CASTELLAN_FIXTURE_HOST=$2" "CASTELLAN_FIXTURE_STATE=$_ffe_dir/fixture-state" \
        "CASTELLAN_FIXTURE_ROOT=$_ffe_dir/root" "CASTELLAN_FIXTURE_LOG=$FLEET_DIR/fixtures/calls.log"
}

# fleet_alive PID: the process exists and is not a zombie (PID 1 may not reap orphans).
fleet_alive() {
    local stat
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

# fleet_is_our_sshd PID CONFIG: PID is a live sshd started with -f CONFIG.
fleet_is_our_sshd() {
    local pid=$1 cfg=$2 comm
    local -a argv
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    fleet_alive "$pid" || return 1
    { read -r comm <"/proc/$pid/comm"; } 2>/dev/null || return 1
    [[ $comm == sshd ]] || return 1
    { mapfile -d '' -t argv <"/proc/$pid/cmdline"; } 2>/dev/null || return 1
    # Either the plain argv ("-f" "CFG") or the listener's proctitle ("... -f CFG ... [listener] ...").
    [[ " ${argv[*]} " == *" -f $cfg "* ]]
}

# fleet_host_pid VAR K|NAME: set VAR to the pid of the running sshd of host dbK (or of host NAME:
# dbK, castK), or to "" if none.
fleet_host_pid() {
    # Locals are prefixed: VAR is set with printf -v and must not name one of them.
    local _fhp_dir _fhp_pid="" _fhp_name=$2
    [[ $_fhp_name =~ ^[0-9]+$ ]] && _fhp_name=db$_fhp_name
    _fhp_dir=$FLEET_DIR/hosts/$_fhp_name
    { read -r _fhp_pid <"$_fhp_dir/sshd.pid"; } 2>/dev/null || _fhp_pid=""
    fleet_is_our_sshd "$_fhp_pid" "$_fhp_dir/sshd_config" || _fhp_pid=""
    printf -v "$1" '%s' "$_fhp_pid"
}

# fleet_stop SIGNAL PID...: send SIGNAL to the pids and their descendants, wait until all are gone
# (escalating to SIGKILL after 5 s). Prints the number of processes signalled.
fleet_stop() {
    local sig=$1 pid i
    shift
    (($# > 0)) || { echo 0; return 0; }
    local -a all
    mapfile -t all < <(fleet_with_descendants "$@")
    kill "-$sig" "${all[@]}" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        local -a left=()
        for pid in "${all[@]}"; do fleet_alive "$pid" && left+=("$pid"); done
        ((${#left[@]} == 0)) && break
        if ((i == 50)); then kill -KILL "${left[@]}" 2>/dev/null || true; fi
        sleep 0.1
    done
    echo "${#all[@]}"
}

# fleet_probe ADDR: the address accepts a TCP connection on port 22 and answers with an SSH banner.
fleet_probe() {
    (
        exec 3<>"/dev/tcp/$1/22" || exit 1
        IFS= read -r -t 2 line <&3 || exit 1
        [[ $line == SSH-* ]]
    ) 2>/dev/null
}

# fleet_with_descendants PID...: print the given pids and all their descendants, one a line, except
# a `postgres` process whose parent is not a `postgres` process (and its subtree), unless it is one
# of the given pids: a PostgreSQL server started from an ssh session (pg_ctlcluster over ssh) is a
# daemon of its own, and stopping or killing a host's sshd leaves it running.
fleet_with_descendants() {
    ps -e -o pid=,ppid=,comm= | awk -v roots="$*" '
        { parent[$1] = $2; comm[$1] = $3 }
        END {
            n = split(roots, r, " ")
            for (i = 1; i <= n; i++) keep[r[i]] = 1
            do {
                grown = 0
                for (p in parent) {
                    if ((p in keep) || !(parent[p] in keep)) continue
                    if (comm[p] == "postgres" && comm[parent[p]] != "postgres") continue
                    keep[p] = 1; grown = 1
                }
            } while (grown)
            for (p in keep) print p
        }'
}

# --- PostgreSQL -------------------------------------------------------------------------------

# fleet_pg_name VAR K: set VAR to the cluster name of host dbK (unique across fleets: has NET).
fleet_pg_name() {
    printf -v "$1" 'f%ddb%d' "$FLEET_NET" "$2"
}

# fleet_dns_name VAR K: set VAR to the DNS name of host dbK (in /etc/hosts while PostgreSQL is up).
fleet_dns_name() {
    printf -v "$1" 'db%d.f%d.fleet.test' "$2" "$FLEET_NET"
}

# fleet_pg_installed: the PostgreSQL 15 server and Debian's cluster tools are there.
fleet_pg_installed() {
    [[ -x $FLEET_PG_BIN/postgres && -x $FLEET_PG_BIN/pg_isready ]] &&
        command -v pg_createcluster >/dev/null && command -v pg_ctlcluster >/dev/null &&
        command -v pg_dropcluster >/dev/null
}

# fleet_pg_ks: print K for every cluster configuration directory named like one of this fleet's
# (fNETdbK under /etc/postgresql/15), in any state, one a line. See fleet_pg_owner for whose it is.
fleet_pg_ks() {
    local d k
    for d in "$FLEET_PG_ETC/f${FLEET_NET}db"*; do
        [[ -d $d ]] || continue
        k=${d##*/f"${FLEET_NET}"db}
        [[ $k =~ ^[1-9][0-9]*$ ]] && echo "$k"
    done
    return 0
}

# fleet_pg_conf_value VAR FILE PARAM: set VAR to the last setting of PARAM in the postgresql.conf
# FILE (quotes removed; no include files followed), or to "" if none.
fleet_pg_conf_value() {
    local _pcv
    _pcv=$(awk -v p="$3" '
        $0 ~ "^[ \t]*" p "[ \t]*=" {
            v = $0; sub(/^[^=]*=[ \t]*/, "", v)
            if (v ~ /^\047/) { v = substr(v, 2); sub(/\047.*/, "", v) } else sub(/[ \t#].*/, "", v)
            val = v
        }
        END { print val }' "$2" 2>/dev/null) || _pcv=""
    printf -v "$1" '%s' "$_pcv"
}

# fleet_pg_owner K: whose the cluster fNETdbK is. Prints "ours" (its data directory is this fleet's
# $FLEET_DIR/hosts/dbK/pgdata), "none" (no postgresql.conf: no cluster, maybe leftovers), or
# "other DATADIR" (another fleet with the same CASTELLAN_FLEET_NET: never touched).
fleet_pg_owner() {
    local name data
    fleet_pg_name name "$1"
    if [[ ! -f $FLEET_PG_ETC/$name/postgresql.conf ]]; then
        echo none
        return
    fi
    fleet_pg_conf_value data "$FLEET_PG_ETC/$name/postgresql.conf" data_directory
    if [[ $data == "$FLEET_DIR/hosts/db$1/pgdata" ]]; then echo ours; else echo "other $data"; fi
}

# fleet_pg_pid VAR K: set VAR to the pid of the running postmaster of cluster fNETdbK, or to "".
# Found through postmaster.pid in the data directory or the external pid file pg_ctlcluster asks
# for (still there when the data directory was deleted under a running server), and checked to
# be a live `postgres` started with that cluster's config_file.
fleet_pg_pid() {
    local _ppd_name _ppd_f _ppd_pid _ppd_comm _ppd_a
    local -a _ppd_argv
    fleet_pg_name _ppd_name "$2"
    printf -v "$1" '%s' ""
    for _ppd_f in "$FLEET_DIR/hosts/db$2/pgdata/postmaster.pid" "$FLEET_PG_RUN/$FLEET_PG_VERSION-$_ppd_name.pid"; do
        { read -r _ppd_pid <"$_ppd_f"; } 2>/dev/null || continue
        [[ $_ppd_pid =~ ^[0-9]+$ ]] || continue
        fleet_alive "$_ppd_pid" || continue
        { read -r _ppd_comm <"/proc/$_ppd_pid/comm"; } 2>/dev/null || continue
        [[ $_ppd_comm == postgres ]] || continue
        { mapfile -d '' -t _ppd_argv <"/proc/$_ppd_pid/cmdline"; } 2>/dev/null || continue
        for _ppd_a in "${_ppd_argv[@]}"; do
            if [[ $_ppd_a == "config_file=$FLEET_PG_ETC/$_ppd_name/postgresql.conf" ]]; then
                printf -v "$1" '%s' "$_ppd_pid"
                return 0
            fi
        done
    done
    return 0
}

# fleet_pg_stop K: stop the server of cluster fNETdbK if it runs: pg_ctlcluster stop (fast
# shutdown), then SIGQUIT/SIGKILL to a postmaster that is left (data directory gone, say).
# Call only for a cluster fleet_pg_owner says is "ours" (or "none").
fleet_pg_stop() {
    local k=$1 name pid
    fleet_pg_name name "$k"
    fleet_pg_pid pid "$k"
    [[ -n $pid ]] || return 0
    if [[ -f $FLEET_PG_ETC/$name/postgresql.conf ]]; then
        pg_ctlcluster "$FLEET_PG_VERSION" "$name" stop -m fast >/dev/null 2>&1 9>&- || true
        fleet_pg_pid pid "$k"
    fi
    if [[ -n $pid ]]; then fleet_stop QUIT "$pid" >/dev/null; fi
    return 0
}

# fleet_pg_drop K: stop and delete cluster fNETdbK (pg_dropcluster --stop), then what it leaves
# behind: files added to its configuration directory (conf.d, certificates), the external pid file,
# the data and socket directories. Call only for a cluster fleet_pg_owner says is "ours" or "none".
fleet_pg_drop() {
    local k=$1 name dir out
    fleet_pg_name name "$k"
    dir=$FLEET_DIR/hosts/db$k
    fleet_pg_stop "$k"
    # An EDB-layout server (up.sh --edb) on this host's data directory goes too.
    if fleet_edb_is "$k"; then fleet_edb_stop "$k"; fi
    if [[ -f $FLEET_PG_ETC/$name/postgresql.conf ]]; then
        # Quiet unless it fails (it warns about a missing data directory, the usual broken case).
        if ! out=$(pg_dropcluster --stop "$FLEET_PG_VERSION" "$name" 2>&1 9>&-); then
            printf 'db%s: pg_dropcluster %s %s failed (removing its files):\n%s\n' \
                "$k" "$FLEET_PG_VERSION" "$name" "$out" >&2
        fi
    fi
    rm -rf "${FLEET_PG_ETC:?}/$name" "$dir/pgdata" "$dir/pgsock"
    rm -f "$FLEET_PG_RUN/$FLEET_PG_VERSION-$name.pid" "$dir/postgresql.log"
}

# fleet_etc_hosts N: make this fleet's block in /etc/hosts name db1..dbN ("127.NET.x.y
# dbK.fNET.fleet.test"); N=0 removes the block. The block is delimited by "# BEGIN castellan fleet
# NET" and "# END castellan fleet NET" and names its fleet dir; the rest of the file is kept as it
# is. A block of another fleet dir with the same NET that still exists is left alone (fails).
# Serialized across fleets with a lock; replaced atomically when /etc/hosts can be renamed over,
# else rewritten in place (a bind mount); not written at all when nothing changes.
fleet_etc_hosts() {
    local n=$1 k addr dns tmp owner
    local begin="# BEGIN castellan fleet $FLEET_NET" end="# END castellan fleet $FLEET_NET"
    local tag="# test fleet "
    mkdir -p /run/lock
    (
        flock 8
        owner=$(awk -v b="$begin" -v t="$tag" '$0 == b { inb = 1; next }
            inb && index($0, t) == 1 { v = substr($0, length(t) + 1); sub(/ .*/, "", v); print v; exit }
            inb { exit }' "$FLEET_ETC_HOSTS")
        if [[ -n $owner && $owner != "$FLEET_DIR" && -d $owner/hosts ]]; then
            echo "${0##*/}: $FLEET_ETC_HOSTS: the block of CASTELLAN_FLEET_NET=$FLEET_NET belongs to the fleet in $owner; left alone" >&2
            exit 1
        fi
        tmp=$(mktemp "$FLEET_ETC_HOSTS.castellan.XXXXXX")
        trap 'rm -f "$tmp"' EXIT
        cp -p "$FLEET_ETC_HOSTS" "$tmp" 2>/dev/null || true
        {
            awk -v b="$begin" -v e="$end" '$0 == b { skip = 1 } !skip { print } $0 == e { skip = 0 }' "$FLEET_ETC_HOSTS"
            if ((n > 0)); then
                printf '%s\n' "$begin" "$tag$FLEET_DIR (tests/fleet/up.sh; removed by down.sh --purge)"
                for ((k = 1; k <= n; k++)); do
                    fleet_addr addr "$k"
                    fleet_dns_name dns "$k"
                    printf '%s %s\n' "$addr" "$dns"
                done
                printf '%s\n' "$end"
            fi
        } >"$tmp"
        cmp -s "$tmp" "$FLEET_ETC_HOSTS" && exit 0
        chmod 0644 "$tmp"
        mv -f "$tmp" "$FLEET_ETC_HOSTS" 2>/dev/null || cat "$tmp" >"$FLEET_ETC_HOSTS"
    ) 8>/run/lock/castellan-fleet-etc-hosts.lock
}

# fleet_parallel JOBS FUNCTION ARG...: run "FUNCTION ARG" for each ARG in the background, at most
# JOBS at a time, with the fleet lock (fd 9) closed so no server started keeps it. Fails if any
# run failed.
fleet_parallel() {
    local jobs=$1 fn=$2 arg pid rc=0
    local -a pids=()
    shift 2
    for arg in "$@"; do
        if ((${#pids[@]} >= jobs)); then
            wait "${pids[0]}" || rc=1
            pids=("${pids[@]:1}")
        fi
        "$fn" "$arg" 9>&- &
        pids+=("$!")
    done
    for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
    return "$rc"
}

# --- EDB layout (up.sh --edb K) -------------------------------------------------------------------
# Host dbK's cluster as EDB Postgres Advanced Server lays it out: made by initdb as OS user
# enterprisedb (created if missing), postgresql.conf and pg_hba.conf inside the data directory
# $FLEET_DIR/hosts/dbK/pgdata, port 5444, started and stopped with pg_ctl (log
# $FLEET_DIR/hosts/dbK/postgresql.log), fleet settings in pgdata/conf.d/00-castellan-fleet.conf.

# fleet_edb_is K: dbK's data directory has the initdb layout (its postgresql.conf inside).
fleet_edb_is() {
    [[ -f $FLEET_DIR/hosts/db$1/pgdata/postgresql.conf ]]
}

# fleet_edb_user: make sure OS user enterprisedb (and its group) exists.
fleet_edb_user() {
    id -u "$FLEET_EDB_USER" >/dev/null 2>&1 && return 0
    useradd --system --user-group --create-home --home-dir "/var/lib/$FLEET_EDB_USER" \
        --shell /bin/sh "$FLEET_EDB_USER" 2>/dev/null || id -u "$FLEET_EDB_USER" >/dev/null 2>&1 ||
        fleet_die "cannot create OS user $FLEET_EDB_USER (useradd)"
}

# fleet_edb_pid VAR K: set VAR to the pid of the postmaster running on dbK's EDB-layout data
# directory (postmaster.pid, a live `postgres` started with -D that directory), or to "".
fleet_edb_pid() {
    local _epd_dir _epd_pid _epd_comm
    local -a _epd_argv
    _epd_dir=$FLEET_DIR/hosts/db$2/pgdata
    printf -v "$1" '%s' ""
    { read -r _epd_pid <"$_epd_dir/postmaster.pid"; } 2>/dev/null || return 0
    [[ $_epd_pid =~ ^[0-9]+$ ]] || return 0
    fleet_alive "$_epd_pid" || return 0
    { read -r _epd_comm <"/proc/$_epd_pid/comm"; } 2>/dev/null || return 0
    [[ $_epd_comm == postgres ]] || return 0
    { mapfile -d '' -t _epd_argv <"/proc/$_epd_pid/cmdline"; } 2>/dev/null || return 0
    [[ " ${_epd_argv[*]} " == *" -D $_epd_dir "* ]] || return 0
    printf -v "$1" '%s' "$_epd_pid"
}

# fleet_edb_ctl K ACTION [ARGS...]: pg_ctl ACTION on dbK's EDB-layout cluster as enterprisedb.
fleet_edb_ctl() {
    local k=$1 action=$2 dir
    shift 2
    dir=$FLEET_DIR/hosts/db$k
    runuser -u "$FLEET_EDB_USER" -- "$FLEET_PG_BIN/pg_ctl" -D "$dir/pgdata" -l "$dir/postgresql.log" \
        "$action" "$@" 9>&-
}

# fleet_edb_stop K: stop dbK's EDB-layout server if it runs (pg_ctl stop -m fast, then SIGQUIT).
fleet_edb_stop() {
    local pid
    fleet_edb_pid pid "$1"
    [[ -n $pid ]] || return 0
    fleet_edb_ctl "$1" stop -m fast -w -t 30 >/dev/null 2>&1 || true
    fleet_edb_pid pid "$1"
    if [[ -n $pid ]]; then fleet_stop QUIT "$pid" >/dev/null; fi
    return 0
}

# fleet_edb_drop K: stop dbK's EDB-layout server and delete its data, socket directory and log.
fleet_edb_drop() {
    local dir=$FLEET_DIR/hosts/db$1
    fleet_edb_stop "$1"
    rm -rf "$dir/pgdata" "$dir/pgsock" "$dir/postgresql.log"
}
