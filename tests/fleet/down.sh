#!/usr/bin/env bash
# Stop the local test fleet started by up.sh: every host sshd named by a pid file under the fleet dir
# (checked to really be that sshd: comm "sshd" and "-f <its config>" in its command line), with its
# session processes, and any ssh ControlMaster whose control socket lives under the fleet dir.
# Leaves all files in place (keys are reused by the next up.sh) unless --purge is given, which then
# deletes the fleet dir and the generated inventory.
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

if [[ ! -d $FLEET_DIR/hosts ]]; then
    echo "fleet: nothing to stop ($FLEET_DIR/hosts does not exist)"
    exit 0
fi
exec 9>"$FLEET_DIR/.lock"
flock 9

hosts=()
pids=()
for dir in "$FLEET_DIR"/hosts/db*; do
    [[ -d $dir ]] || continue
    k=${dir##*/db}
    [[ $k =~ ^[0-9]+$ ]] || continue
    fleet_host_pid pid "$k"
    if [[ -n $pid ]]; then
        hosts+=("db$k")
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

if ((purge)); then
    rm -rf "$FLEET_DIR"
    # Only the inventory up.sh wrote (it starts with up.sh's header line).
    if [[ -f $FLEET_INVENTORY ]] && head -n 1 "$FLEET_INVENTORY" | grep -q '^# Written by tests/fleet/up.sh'; then
        rm -f "$FLEET_INVENTORY"
    fi
fi
printf 'fleet: stopped %d hosts (%d sshd processes), %d ssh control masters%s\n' \
    "${#hosts[@]}" "$nproc_sshd" "${#masters[@]}" "$( ((purge)) && echo "; removed $FLEET_DIR")"
