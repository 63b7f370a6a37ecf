# shellcheck shell=bash
# Shared helpers for tests/fleet/{up,down,kill}.sh. Sourced, not executed.
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

# fleet_host_pid VAR K: set VAR to the pid of host dbK's running sshd, or to "" if none.
fleet_host_pid() {
    # Locals are prefixed: VAR is set with printf -v and must not name one of them.
    local _fhp_dir _fhp_pid=""
    _fhp_dir=$FLEET_DIR/hosts/db$2
    { read -r _fhp_pid <"$_fhp_dir/sshd.pid"; } 2>/dev/null || _fhp_pid=""
    fleet_is_our_sshd "$_fhp_pid" "$_fhp_dir/sshd_config" || _fhp_pid=""
    printf -v "$1" '%s' "$_fhp_pid"
}

# fleet_with_descendants PID...: print the given pids and all their descendants, one a line.
fleet_with_descendants() {
    ps -e -o pid=,ppid= | awk -v roots="$*" '
        { parent[$1] = $2 }
        END {
            n = split(roots, r, " ")
            for (i = 1; i <= n; i++) keep[r[i]] = 1
            do {
                grown = 0
                for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; grown = 1 }
            } while (grown)
            for (p in keep) print p
        }'
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
