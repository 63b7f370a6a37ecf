#!/usr/bin/env bash
# Start (or resize, or repair) the local test fleet: N hosts db1..dbN, each its own sshd on its own
# loopback address, port 22, key-only root login. Idempotent: running it again leaves exactly N healthy
# hosts (dead ones restarted, hosts above N stopped). Needs root.
#
# Usage: tests/fleet/up.sh N
# Writes the fleet state to $CASTELLAN_FLEET_DIR (default tests/fleet/.state) and an Ansible YAML
# inventory (default tests/fleet/inventory.yml); see lib.sh for the environment variables and the
# address scheme. Stop the fleet with tests/fleet/down.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FLEET_JOBS=${CASTELLAN_FLEET_JOBS:-32}

# host_config VAR K: set VAR to the sshd_config of host dbK.
host_config() {
    local _hc_addr _hc_dir=$FLEET_DIR/hosts/db$2
    fleet_addr _hc_addr "$2"
    printf -v "$1" '%s\n' \
        "# castellan test fleet host db$2 (written by tests/fleet/up.sh; edits are overwritten)" \
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
        "SetEnv HOME=$_hc_dir/home" \
        "MaxSessions 10" \
        "Subsystem sftp internal-sftp" \
        "UseDNS no" \
        "PrintMotd no" \
        "PrintLastLog no" \
        "X11Forwarding no" \
        "LogLevel INFO"
}

# start_one K: (re)start host dbK. Run in parallel by xargs, one process per host.
start_one() {
    local k=$1 dir pid i
    dir=$FLEET_DIR/hosts/db$k
    mkdir -p "$dir/root" "$dir/home"
    if [[ ! -s $dir/ssh_host_ed25519_key || ! -s $dir/ssh_host_ed25519_key.pub ]]; then
        rm -f "$dir/ssh_host_ed25519_key" "$dir/ssh_host_ed25519_key.pub"
        ssh-keygen -q -t ed25519 -N '' -C "db$k" -f "$dir/ssh_host_ed25519_key" </dev/null
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
        echo "db$k: sshd -t rejected $dir/sshd_config:" >&2
        cat "$dir/sshd-t.err" >&2
        return 1
    fi
    rm -f "$dir/sshd-t.err"
    : >>"$dir/sshd.log"
    local before
    before=$(wc -l <"$dir/sshd.log")
    # sshd binds its address, then daemonizes (the parent exits 0) and the child writes the pid file.
    if ! "$FLEET_SSHD" -f "$dir/sshd_config" -E "$dir/sshd.log" </dev/null >/dev/null 2>&1 9>&-; then
        echo "db$k: sshd failed to start; $dir/sshd.log says:" >&2
        tail -n "+$((before + 1))" "$dir/sshd.log" | tail -n 5 >&2
        return 1
    fi
    for ((i = 0; i < 100; i++)); do
        fleet_host_pid pid "$k"
        [[ -n $pid ]] && return 0
        sleep 0.05
    done
    echo "db$k: sshd started but no live pid in $dir/sshd.pid; $dir/sshd.log says:" >&2
    tail -n "+$((before + 1))" "$dir/sshd.log" | tail -n 5 >&2
    return 1
}

if [[ ${1:-} == --start-one ]]; then
    start_one "$2"
    exit
fi

[[ $# -eq 1 && $1 =~ ^[0-9]+$ ]] || {
    echo "usage: $0 N   (start hosts db1..dbN; N=0 stops all)" >&2
    exit 2
}
N=$((10#$1))
((N <= 254 * 254)) || fleet_die "at most $((254 * 254)) hosts"
[[ $(id -u) == 0 ]] || fleet_die "must run as root (sshd on port 22, root logins)"

SECONDS_START=$(date +%s.%N)

if [[ ! -x $FLEET_SSHD ]] || ! command -v ssh-keygen >/dev/null || ! command -v ssh >/dev/null; then
    echo "up.sh: installing openssh-server" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server openssh-client >&2
fi
mkdir -p /run/sshd
chmod 0755 /run/sshd

mkdir -p "$FLEET_DIR/hosts"
# One up/down/kill at a time per fleet dir. Started sshds get fd 9 closed (see start_one).
exec 9>"$FLEET_DIR/.lock"
flock 9

if [[ ! -s $FLEET_KEY || ! -s $FLEET_KEY.pub ]]; then
    rm -f "$FLEET_KEY" "$FLEET_KEY.pub"
    ssh-keygen -q -t ed25519 -N '' -C castellan-fleet-client -f "$FLEET_KEY" </dev/null
fi
cp "$FLEET_KEY.pub" "$FLEET_AUTHORIZED_KEYS.new"
mv -f "$FLEET_AUTHORIZED_KEYS.new" "$FLEET_AUTHORIZED_KEYS"

# Stop hosts above N.
stop_pids=()
stopped=0
for dir in "$FLEET_DIR"/hosts/db*; do
    [[ -d $dir ]] || continue
    k=${dir##*/db}
    if ! [[ $k =~ ^[0-9]+$ ]] || ((k <= N)); then continue; fi
    fleet_host_pid pid "$k"
    if [[ -n $pid ]]; then
        stop_pids+=("$pid")
        stopped=$((stopped + 1))
    fi
    rm -f "$dir/sshd.pid"
done
fleet_stop TERM "${stop_pids[@]}" >/dev/null

# Find hosts that need (re)starting: not running, or running with a config that is not current.
todo=()
addr="" want=""
for ((k = 1; k <= N; k++)); do
    dir=$FLEET_DIR/hosts/db$k
    fleet_host_pid pid "$k"
    if [[ -n $pid ]]; then
        current=""
        { IFS= read -r -d '' current <"$dir/sshd_config"; } 2>/dev/null || true
        host_config want "$k"
        [[ $current == "$want" ]] && continue
    fi
    todo+=("$k")
done

failed=0
if ((${#todo[@]} > 0)); then
    printf '%s\n' "${todo[@]}" |
        xargs -P "$FLEET_JOBS" -n 1 "$FLEET_SCRIPT_DIR/up.sh" --start-one 9>&- || failed=1
fi

# known_hosts and inventory for db1..dbN, each replaced atomically.
{
    for ((k = 1; k <= N; k++)); do
        fleet_addr addr "$k"
        read -r type key _ <"$FLEET_DIR/hosts/db$k/ssh_host_ed25519_key.pub"
        printf '%s %s %s\n' "$addr" "$type" "$key"
    done
} >"$FLEET_KNOWN_HOSTS.new"
mv -f "$FLEET_KNOWN_HOSTS.new" "$FLEET_KNOWN_HOSTS"

mkdir -p "$(dirname "$FLEET_INVENTORY")"
{
    printf '# Written by tests/fleet/up.sh %d (fleet dir %s); edits are overwritten.\n' "$N" "$FLEET_DIR"
    printf 'all:\n  children:\n    fleet:\n      hosts:\n'
    ((N > 0)) || printf '        {}\n'
    for ((k = 1; k <= N; k++)); do
        fleet_addr addr "$k"
        printf '        db%d: {ansible_host: %s, fleet_root: "%s/root"}\n' "$k" "$addr" "$FLEET_DIR/hosts/db$k"
    done
    printf '      vars:\n'
    printf '        ansible_user: root\n'
    printf '        ansible_ssh_private_key_file: "%s"\n' "$FLEET_KEY"
    printf '        ansible_ssh_common_args: "-o UserKnownHostsFile=%s"\n' "$FLEET_KNOWN_HOSTS"
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
        for ((k = 1; k <= N; k++)); do
            fleet_addr addr "$k"
            [[ -n ${listening[$addr:22]:-} ]] || down+=("db$k")
        done
    else
        for ((k = 1; k <= N; k++)); do
            fleet_addr addr "$k"
            fleet_probe "$addr" || down+=("db$k")
        done
    fi
    ((${#down[@]} == 0 || $(date +%s) >= deadline)) && break
    sleep 0.1
done
if ((${#down[@]} > 0)); then
    fleet_die "not accepting connections on port 22: ${down[*]} (see $FLEET_DIR/hosts/dbK/sshd.log)"
fi
((failed == 0)) || fleet_die "some hosts failed to start (see above)"

# One real login, strict host key checking, to prove key, known_hosts and config fit together.
for k in 1 "$N"; do
    ((k >= 1 && k <= N)) || continue
    fleet_addr addr "$k"
    ssh -n -i "$FLEET_KEY" -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes \
        -o UserKnownHostsFile="$FLEET_KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null \
        -o ControlMaster=no -o ControlPath=none -o ConnectTimeout=5 \
        "root@$addr" true 9>&- ||
        fleet_die "ssh root@$addr (db$k) failed"
done

elapsed=$(awk -v a="$SECONDS_START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
range="no hosts"
if ((N > 0)); then
    fleet_addr first 1
    fleet_addr last "$N"
    range="db1..db$N at $first..$last:22"
fi
printf 'fleet: %d hosts up (%s), %d started, %d kept, %d stopped, in %ss; inventory %s\n' \
    "$N" "$range" "${#todo[@]}" $((N - ${#todo[@]})) "$stopped" "$elapsed" "$FLEET_INVENTORY"
