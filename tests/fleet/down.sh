#!/usr/bin/env bash
# Stop the local test fleet started by up.sh: every host sshd (dbK, castK, capwebK, capworkerK) named by a pid file under the fleet dir
# (checked to really be that sshd: comm "sshd" and "-f <its config>" in its command line), with its
# session processes, and any ssh ControlMaster whose control socket lives under the fleet dir.
# Stops the fleet's PostgreSQL clusters (pg_ctlcluster stop, pg_ctl stop for an EDB-layout one; data
# kept, the next up.sh starts them).
# Leaves all files in place (keys are reused by the next up.sh) unless --purge is given, which then
# drops the clusters (pg_dropcluster, and the files it leaves in /etc/postgresql/15/NAME), removes the
# fleet's block from /etc/hosts, and deletes the fleet dir and the generated inventory.
#
# Usage: tests/fleet/down.sh [--purge]
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

purge=0
case ${1:-} in
"") ;;
--purge) purge=1 ;;
*)
    echo "usage: $0 [--purge]" >&2
    exit 2
    ;;
esac

# Clusters of this fleet: named like its clusters (NET) and with their data under this fleet dir.
pg_ks=()
if fleet_pg_installed; then
    while read -r k; do
        owner=$(fleet_pg_owner "$k")
        # A leftover configuration directory (no postgresql.conf) goes too when purging.
        [[ $owner == ours || ($owner == none && $purge == 1) ]] && pg_ks+=("$k")
    done < <(fleet_pg_ks)
fi

if [[ ! -d $FLEET_DIR/hosts ]] && ((${#pg_ks[@]} == 0)); then
    if ((purge)); then fleet_etc_hosts 0 || true; fi
    echo "fleet: nothing to stop ($FLEET_DIR/hosts does not exist)"
    exit 0
fi
if [[ -d $FLEET_DIR ]]; then
    exec 9>"$FLEET_DIR/.lock"
    flock 9
fi

hosts=()
pids=()
for dir in "$FLEET_DIR"/hosts/*; do
    [[ -d $dir ]] || continue
    name=${dir##*/}
    [[ $name =~ $FLEET_HOST_NAME_RE ]] || continue
    fleet_host_pid pid "$name"
    if [[ -n $pid ]]; then
        hosts+=("$name")
        pids+=("$pid")
    fi
done

# ssh ControlMasters with their socket under the fleet dir: found by their listening unix socket (ss),
# or by a control path under the fleet dir in their command line (-S / ControlPath, or the
# "ssh: <path> [mux]" title some versions set).
masters=()
if command -v ss >/dev/null; then
    while read -r pid; do masters+=("$pid"); done < <(
        ss -xlpnH 2>/dev/null | awk -v dir="$FLEET_DIR/" '
            { for (i = 1; i <= NF; i++) if (index($i, dir) == 1) { hit = 1 } }
            hit && /users:\(\("ssh",/ { s = $0; while (match(s, /"ssh",pid=[0-9]+/)) {
                p = substr(s, RSTART, RLENGTH); sub(/.*pid=/, "", p); print p; s = substr(s, RSTART + RLENGTH) } }
            { hit = 0 }')
fi
while read -r pid; do masters+=("$pid"); done < <(
    ps -e -o pid=,comm=,args= | awk -v dir="$FLEET_DIR/" '
        $2 != "ssh" { next }
        index($0, " -S " dir) || index($0, " -S" dir) || index($0, "ControlPath=" dir) || index($0, "ControlPath " dir) { print $1; next }
        index($0, "ssh: " dir) && / \[mux\]/ { print $1 }')
if ((${#masters[@]} > 0)); then
    mapfile -t masters < <(printf '%s\n' "${masters[@]}" | sort -un)
fi

nproc_sshd=$(fleet_stop TERM "${pids[@]}")
fleet_stop TERM "${masters[@]}" >/dev/null
for h in "${hosts[@]}"; do rm -f "$FLEET_DIR/hosts/$h/sshd.pid"; done

# pg_down K: stop (or with --purge drop) dbK's cluster; prints "stopped" when a server was running.
pg_down() {
    local pid
    fleet_pg_pid pid "$1"
    if ((purge)); then fleet_pg_drop "$1"; else fleet_pg_stop "$1"; fi
    if [[ -n $pid ]]; then echo stopped; fi
    return 0
}
pg_stopped=0
if ((${#pg_ks[@]} > 0)); then
    pg_stopped=$(fleet_parallel 8 pg_down "${pg_ks[@]}" | grep -c stopped) || true
fi
# EDB-layout clusters (up.sh --edb): stopped with pg_ctl; --purge deletes their data with the dir.
for dir in "$FLEET_DIR"/hosts/db*; do
    k=${dir##*/db}
    [[ $k =~ ^[0-9]+$ ]] && fleet_edb_is "$k" || continue
    fleet_edb_pid pid "$k"
    [[ -n $pid ]] || continue
    fleet_edb_stop "$k"
    pg_stopped=$((pg_stopped + 1))
done

hosts_block=removed
if ((purge)); then
    fleet_etc_hosts 0 || hosts_block="kept (not this fleet's)"
    rm -rf "$FLEET_DIR"
    # Only the inventory up.sh wrote (it starts with up.sh's header line).
    if [[ -f $FLEET_INVENTORY ]] && head -n 1 "$FLEET_INVENTORY" | grep -q '^# Written by tests/fleet/up.sh'; then
        rm -f "$FLEET_INVENTORY"
    fi
fi
printf 'fleet: stopped %d hosts (%d sshd processes), %d ssh control masters, %d postgres servers%s\n' \
    "${#hosts[@]}" "$nproc_sshd" "${#masters[@]}" "$pg_stopped" \
    "$( ((purge)) && echo "; dropped ${#pg_ks[@]} clusters, removed $FLEET_DIR; /etc/hosts block $hosts_block")"
