#!/usr/bin/env bash
# Cut one fleet host off: SIGKILL its sshd listener and every session process under it, so open
# (multiplexed) connections drop and new connections are refused. up.sh brings it back. The host's
# PostgreSQL server keeps running (even one started from an ssh session); see pg.sh to stop it.
#
# Usage: tests/fleet/kill.sh dbK
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -eq 1 && $1 =~ ^db([0-9]+)$ ]] || {
    echo "usage: $0 dbK" >&2
    exit 2
}
k=${BASH_REMATCH[1]}
[[ -d $FLEET_DIR/hosts ]] || fleet_die "no fleet in $FLEET_DIR"
exec 9>"$FLEET_DIR/.lock"
flock 9
fleet_host_pid pid "$k"
[[ -n $pid ]] || fleet_die "db$k is not running (no live sshd for $FLEET_DIR/hosts/db$k/sshd_config)"
n=$(fleet_stop KILL "$pid")
rm -f "$FLEET_DIR/hosts/db$k/sshd.pid"
addr=""
fleet_addr addr "$k"
if fleet_probe "$addr"; then fleet_die "db$k ($addr) still answers on port 22"; fi
echo "fleet: killed db$k ($addr), $n processes"
