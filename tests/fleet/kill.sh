#!/usr/bin/env bash
# Cut one fleet host off: SIGKILL its sshd listener and every session process under it, so open
# (multiplexed) connections drop and new connections are refused. up.sh brings it back. The host's
# PostgreSQL server keeps running (even one started from an ssh session); see pg.sh to stop it.
#
# Usage: tests/fleet/kill.sh dbK|castK|capwebK|capworkerK
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -eq 1 && $1 =~ $FLEET_HOST_NAME_RE ]] || {
    echo "usage: $0 dbK|castK|capwebK|capworkerK" >&2
    exit 2
}
h=$1
[[ -d $FLEET_DIR/hosts ]] || fleet_die "no fleet in $FLEET_DIR"
exec 9>"$FLEET_DIR/.lock"
flock 9
fleet_host_pid pid "$h"
[[ -n $pid ]] || fleet_die "$h is not running (no live sshd for $FLEET_DIR/hosts/$h/sshd_config)"
n=$(fleet_stop KILL "$pid")
rm -f "$FLEET_DIR/hosts/$h/sshd.pid"
addr=""
fleet_host_addr addr "$h"
if fleet_probe "$addr"; then fleet_die "$h ($addr) still answers on port 22"; fi
echo "fleet: killed $h ($addr), $n processes"
