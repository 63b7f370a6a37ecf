#!/usr/bin/env bash
# Control one fleet host's PostgreSQL cluster (created by up.sh) for tests, through pg_ctlcluster
# like the roles do (pg_ctl, as OS user enterprisedb on port 5444, for the host of up.sh --edb).
#
# Usage: tests/fleet/pg.sh dbK start|stop|restart|reload|status
#        tests/fleet/pg.sh dbK psql [PSQL ARGS...]
#   status  prints pg_ctlcluster's status; exit 0 when running, 3 when stopped (as pg_ctlcluster)
#   psql    runs psql as the OS user postgres (enterprisedb) over the host's socket directory (peer
#           login), e.g.
#           tests/fleet/pg.sh db1 psql -XAtc 'show ssl'
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    echo "usage: $0 dbK start|stop|restart|reload|status   or   $0 dbK psql [ARGS...]" >&2
    exit 2
}
if (($# < 2)) || ! [[ $1 =~ ^db([0-9]+)$ ]]; then usage; fi
k=$((10#${BASH_REMATCH[1]}))
action=$2
shift 2
case $action in
start | stop | restart | reload | status) (($# == 0)) || usage ;;
psql) ;;
*) usage ;;
esac
fleet_pg_installed || fleet_die "PostgreSQL $FLEET_PG_VERSION is not installed (up.sh installs it)"
# An EDB-layout cluster (up.sh --edb K): OS user enterprisedb, port 5444, pg_ctl.
if fleet_edb_is "$k"; then
    if [[ $action == psql ]]; then
        exec runuser -u "$FLEET_EDB_USER" -- "$FLEET_PG_BIN/psql" -h "$FLEET_DIR/hosts/db$k/pgsock" \
            -p "$FLEET_EDB_PORT" -U "$FLEET_EDB_USER" -d postgres "$@"
    fi
    if [[ $action != status ]]; then
        exec 9>"$FLEET_DIR/.lock"
        flock 9
    fi
    case $action in
    start | restart) set -- -w -t 60 ;;
    stop) set -- -m fast -w -t 60 ;;
    *) set -- ;;
    esac
    rc=0
    fleet_edb_ctl "$k" "$action" "$@" || rc=$?
    exit "$rc"
fi
name=""
fleet_pg_name name "$k"
owner=$(fleet_pg_owner "$k")
case $owner in
ours) ;;
none) fleet_die "db$k has no cluster (no $FLEET_PG_ETC/$name/postgresql.conf; up.sh creates it)" ;;
*) fleet_die "cluster $FLEET_PG_VERSION/$name belongs to another fleet (data directory ${owner#other }), not to $FLEET_DIR" ;;
esac

if [[ $action == psql ]]; then
    exec runuser -u postgres -- "$FLEET_PG_BIN/psql" -h "$FLEET_DIR/hosts/db$k/pgsock" \
        -p "$FLEET_PG_PORT" -U postgres -d postgres "$@"
fi
if [[ $action != status ]]; then
    # Like up.sh and kill.sh: one at a time per fleet dir; the server must not inherit the lock.
    exec 9>"$FLEET_DIR/.lock"
    flock 9
fi
rc=0
pg_ctlcluster "$FLEET_PG_VERSION" "$name" "$action" 9>&- || rc=$?
exit "$rc"
