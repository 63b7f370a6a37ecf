#!/usr/bin/env bash
# The Vagrant suite (issue 14): separate hosts with their own filesystems and PostgreSQL 13/15/17,
# as containers of Vagrant's Docker provider. Run by tests/run.sh (so by .ci/run) after the cargo
# tests; on its own: bash tests/vagrant/run.sh. Needs root and a running Docker daemon.
#
# Steps (one summary line each, with its time): set-up, images (cached), vagrant up, inventory,
# enable-mtls.yml, re-run changed=0, hba rules per version, verify-full logins from this machine,
# cast-imaging.yml (logins from cast1 with psql and pgjdbc as its service user, a re-run changed=0),
# cap-upgrade.yml (install, upgrade and a re-run on cap1: the fixture cs's recorded calls, CAP's
# DATABASE_URL login), rotate-certs.yml (new served and client certificates, every login still
# works, nothing due: changed=0), a written file
# present in the container and absent here, `docker network disconnect` (unreachable within the
# connection timeout), `docker kill` during a run (that host unreachable, the others finish, exit 3),
# then `vagrant destroy -f` (always, also on failure or interrupt) and a check that no container is
# left. Exit 0 only when every step passed.
#
# Environment: CASTELLAN_VAGRANT_NET (default 14: Docker subnet 172.30.14.0/24),
# CASTELLAN_BIN (default target/debug/castellan, built by the set-up step), CASTELLAN_VAGRANT_KEEP=1 keeps
# the machines (no destroy) for a look.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
export CASTELLAN_VAGRANT_NET=${CASTELLAN_VAGRANT_NET:-14}
net=$CASTELLAN_VAGRANT_NET
env_dir=$root/vagrant
inv=vagrant:$env_dir/ssh-config.txt
bin=${CASTELLAN_BIN:-$root/target/debug/castellan}
work=$(mktemp -d "${TMPDIR:-/tmp}/castellan-vagrant-suite.XXXXXX")
log=$work/log
prefix="castellan-vagrant-$net-"
docker_net="vagrant_network_172.30.$net.0/24"
declare -A ip=([pg13]=172.30.$net.11 [pg15]=172.30.$net.12 [pg17]=172.30.$net.13
    [cast1]=172.30.$net.21 [cap1]=172.30.$net.22)
declare -A port=([pg13]=5432 [pg15]=5432 [pg17]=5444)

summary=()
failed=0
suite_start=$SECONDS

# step NAME FUNCTION: run FUNCTION, its output in $work/NAME.out (shown on failure), one summary line.
step() {
    local name=$1 fn=$2 t0=$SECONDS rc
    echo "vagrant suite: $name ..."
    "$fn" >"$work/$name.out" 2>&1
    rc=$?
    local line
    if ((rc == 0)); then
        line=$(printf 'PASS  %-22s %4ss' "$name" $((SECONDS - t0)))
    else
        line=$(printf 'FAIL  %-22s %4ss  (exit %s)' "$name" $((SECONDS - t0)) "$rc")
        failed=1
        echo "---- $name output (last 60 lines) ----"
        tail -n 60 "$work/$name.out"
        echo "----"
    fi
    summary+=("$line")
    echo "vagrant suite: $line"
    return $rc
}

containers() { docker ps -aq --filter "name=^/$prefix"; }

teardown() {
    local t0=$SECONDS
    if [[ ${CASTELLAN_VAGRANT_KEEP:-0} == 1 ]]; then
        summary+=("KEEP  machines kept (CASTELLAN_VAGRANT_KEEP=1)")
    else
        (cd "$env_dir" && vagrant destroy -f) >"$work/destroy.out" 2>&1
        # A container vagrant lost track of (a killed run) goes too, by this suite's name prefix.
        local left
        left=$(containers)
        [[ -z $left ]] || docker rm -f $left >>"$work/destroy.out" 2>&1
        docker network rm "$docker_net" >>"$work/destroy.out" 2>&1 || true
        if [[ -n $(containers) ]]; then
            summary+=("$(printf 'FAIL  %-22s %4ss  (containers left: %s)' destroy $((SECONDS - t0)) "$(containers | tr '\n' ' ')")")
            failed=1
        else
            summary+=("$(printf 'PASS  %-22s %4ss  (no container left)' destroy $((SECONDS - t0)))")
        fi
        rm -rf "$env_dir/.castellan" "$env_dir/ssh-config.txt"
    fi
    echo
    echo "vagrant suite summary (net 172.30.$net.0/24, logs in $work):"
    printf '  %s\n' "${summary[@]}"
    printf '  total %ss: %s\n' $((SECONDS - suite_start)) "$([[ $failed == 0 ]] && echo 'every step passed' || echo 'FAILED')"
}
trap 'teardown; exit $(( failed ? 1 : 0 ))' EXIT
trap 'failed=1; exit 130' INT TERM

cas() { "$bin" "$@"; }

# ---- steps ----------------------------------------------------------------------------------------

s_setup() {
    bash tests/vagrant/setup.sh || return 1
    # The binary of this tree (a stale one would run against newer roles): a no-op when up to date.
    [[ -n ${CASTELLAN_BIN:-} ]] || cargo build --bin castellan || return 1
    # A previous run interrupted before its destroy: start clean.
    local left
    left=$(containers)
    [[ -z $left ]] || docker rm -f $left
    rm -rf "$env_dir/.vagrant" "$env_dir/.castellan" "$env_dir/ssh-config.txt"
    (cd "$env_dir" && vagrant validate) || return 1
    (cd "$env_dir" && VAGRANT_DEFAULT_PROVIDER=libvirt vagrant validate) || return 1
    # VirtualBox is not in Debian's archive: its section is checked without the provider.
    (cd "$env_dir" && vagrant validate --ignore-provider)
}

s_images() { bash vagrant/images/build.sh bullseye bookworm trixie node; }

s_up() {
    (cd "$env_dir" && vagrant up --provider=docker --parallel) || return 1
    # A saved copy: `vagrant ssh-config` costs seconds per call (Ruby, plugins, docker inspect);
    # the steps after `inventory` read it (vagrant:FILE), the inventory step runs it (vagrant:DIR).
    (cd "$env_dir" && vagrant ssh-config) >"$env_dir/ssh-config.txt.new" &&
        mv -f "$env_dir/ssh-config.txt.new" "$env_dir/ssh-config.txt"
}

s_inventory() {
    cas inventory -i "vagrant:$env_dir" --list >"$work/inventory.json" || return 1
    cat "$work/inventory.json"
    python3 - "$work/inventory.json" "$net" <<'EOF'
import json, sys
inv = json.load(open(sys.argv[1])); net = sys.argv[2]
hv = inv["_meta"]["hostvars"]
want = {"pg13": 11, "pg15": 12, "pg17": 13, "cast1": 21, "cap1": 22}
for h, n in want.items():
    assert hv[h]["ansible_host"] == f"172.30.{net}.{n}", (h, hv[h])
    assert hv[h]["ansible_user"] == "vagrant", hv[h]
    assert hv[h]["ansible_ssh_private_key_file"].endswith(f"/machines/{h}/docker/private_key"), hv[h]
assert sorted(inv["postgres"]["hosts"]) == ["pg13", "pg15", "pg17"], inv["postgres"]
print("inventory: 5 machines, groups postgres/cast_imaging/cap")
EOF
    # Strict host key checking: every machine's key is in the managed known_hosts.
    local kh=$env_dir/.castellan/known_hosts h
    for h in "${!ip[@]}"; do
        grep -q "^${ip[$h]} ssh-ed25519 " "$kh" || { echo "no key for $h in $kh"; return 1; }
    done
}

s_mtls() { cas playbook playbooks/enable-mtls.yml -i "$inv"; }

s_rerun() {
    cas playbook playbooks/enable-mtls.yml -i "$inv" | tee "$work/rerun.txt" || return 1
    grep -E '^pg1[35]|^pg17' "$work/rerun.txt" | grep -q 'changed=0' || return 1
    if grep -E ' : ok=' "$work/rerun.txt" | grep -vq 'changed=0 '; then
        echo "a host reported changes on the re-run"
        return 1
    fi
}

# The hba rule castellan wrote on each host, and the version boundary itself: a scratch copy of
# each server's pg_hba.conf with `clientcert=1` is accepted by 13 and refused by 15 and 17
# (pg_hba_file_rules shows the server's own verdict); castellan's pg_hba writes verify-ca for
# `clientcert=1` on 13 and refuses it on 15/17 (boundary.yml) without touching their file.
hba_file() {
    case $1 in
        pg13) echo /etc/postgresql/13/main/pg_hba.conf ;;
        pg15) echo /etc/postgresql/15/main/pg_hba.conf ;;
        pg17) echo /var/lib/edb/as17/data/pg_hba.conf ;;
    esac
}
psql_local() { # HOST SQL: as the server's OS user on its socket
    local h=$1 sql=$2
    case $h in
        pg17) docker exec -u enterprisedb "$prefix$h" /usr/lib/postgresql/17/bin/psql -h /var/run/edb -p 5444 -d postgres -Atc "$sql" ;;
        *) docker exec -u postgres "$prefix$h" psql -d postgres -Atc "$sql" ;;
    esac
}
s_hba() {
    local h f rules
    for h in pg13 pg15 pg17; do
        f=$(hba_file $h)
        rules=$(docker exec "$prefix$h" grep -E '^hostssl' "$f")
        echo "$h ($f): $rules"
        grep -Eq '^hostssl +all +all +0\.0\.0\.0/0 +cert' <<<"$rules" || return 1
        # The server's verdict on the file castellan wrote: no error line.
        [[ $(psql_local $h "select count(*) from pg_hba_file_rules where error is not null or type is null") == 0 ]] || return 1
    done
    cas playbook tests/vagrant/boundary.yml -i "$inv" | tee "$work/boundary.txt"
    local rc=${PIPESTATUS[0]}
    [[ $rc == 2 ]] || { echo "boundary.yml: expected exit 2 (pg15, pg17 refuse), got $rc"; return 1; }
    grep -Eq '^pg13 +: ok=[0-9]+ +changed=1 .*failed=0' "$work/boundary.txt" || return 1
    grep -Eq '^pg15 .*failed=1' "$work/boundary.txt" || return 1
    grep -Eq '^pg17 .*failed=1' "$work/boundary.txt" || return 1
    grep -q 'clientcert=1 was removed in PostgreSQL 14' "$work/boundary.txt" || return 1
    docker exec "$prefix"pg13 grep -E '^hostssl +all +all +10\.99\.0\.0/16 +scram-sha-256 +clientcert=verify-ca' "$(hba_file pg13)" || return 1
    for h in pg15 pg17; do
        if docker exec "$prefix$h" grep -q '10.99.0.0/16' "$(hba_file $h)"; then
            echo "$h: castellan wrote the refused rule"
            return 1
        fi
    done
    # What each server itself says of `clientcert=1`: reload a copy, read pg_hba_file_rules.
    for h in pg13 pg15 pg17; do
        f=$(hba_file $h)
        docker exec "$prefix$h" sh -c "cp -p $f $f.suite && echo 'hostssl all all 10.98.0.0/16 scram-sha-256 clientcert=1' >> $f" || return 1
        local err
        # A refused line is a row with `error` set, or (15 and 17 for clientcert: the message goes
        # to the log only) a row with every field NULL.
        err=$(psql_local $h "select coalesce(min(coalesce(error, 'line ' || line_number || ' refused')), 'ok')
            from pg_hba_file_rules where error is not null or type is null")
        docker exec "$prefix$h" sh -c "mv -f $f.suite $f"
        echo "$h: server's verdict on clientcert=1: $err"
        case $h in
            pg13) [[ $err == ok ]] || return 1 ;;
            *) [[ $err != ok ]] || return 1 ;;
        esac
    done
    # The 10.99 rule of pg13 goes again (the re-runs below compare with enable-mtls's state).
    docker exec "$prefix"pg13 sed -i '/10\.99\.0\.0\/16/d' "$(hba_file pg13)"
}

s_login() {
    local pki h out user
    for h in pg13 pg15 pg17; do
        user=postgres
        [[ $h != pg17 ]] || user=enterprisedb # EDB layout: its superuser
        pki=$env_dir/.castellan/pki/client/$user
        out=$(psql "host=$h.vagrant.test hostaddr=${ip[$h]} port=${port[$h]} dbname=postgres user=$user \
sslmode=verify-full sslrootcert=$pki/root.crt sslcert=$pki/client.crt sslkey=$pki/client.key connect_timeout=10" \
            -Atc "select current_setting('server_version_num')::int / 10000, ssl, client_dn from pg_stat_ssl where pid = pg_backend_pid()") || return 1
        echo "$h: $out"
        case $h in
            pg13) [[ $out == 13\|t\|*CN=postgres* ]] || return 1 ;;
            pg15) [[ $out == 15\|t\|*CN=postgres* ]] || return 1 ;;
            pg17) [[ $out == 17\|t\|*CN=enterprisedb* ]] || return 1 ;;
        esac
        # Without a client certificate: refused.
        if psql "host=$h.vagrant.test hostaddr=${ip[$h]} port=${port[$h]} dbname=postgres user=$user \
sslmode=verify-full sslrootcert=$pki/root.crt sslcert=$work/none.crt sslkey=$work/none.key connect_timeout=10" \
            -Atc 'select 1' >"$work/nocert.txt" 2>&1; then
            echo "$h accepted a login without a client certificate"
            return 1
        fi
        cat "$work/nocert.txt"
        grep -q 'connection requires a valid client certificate' "$work/nocert.txt" || return 1
    done
}

# ---- the client machines: cast1 (CAST Imaging node), cap1 (CAP VM with the recording fixtures) --

in_box() { # HOST USER COMMAND: a shell command inside a machine, as USER
    docker exec -u "$2" "$prefix$1" sh -c "$3"
}

# A verify-full login from cast1 as the service user `cast` with the files the role delivered, to
# a database by its name (cast1's /etc/hosts): "version|user|ssl|client DN".
cast_login() { # HOST
    local h=$1 d=/etc/cast-imaging/ssl
    in_box cast1 cast "psql 'host=$h.vagrant.test port=${port[$h]} dbname=postgres user=operator sslmode=verify-full \
sslcert=$d/client.crt sslkey=$d/client.key sslrootcert=$d/root.crt connect_timeout=10' -XAtc \
\"select current_setting('server_version_num')::int / 10000, current_user, ssl, client_dn from pg_stat_ssl where pid = pg_backend_pid()\""
}

# CAP's login from cap1 as `cryptosense`, with the DATABASE_URL of its configuration: "user|ssl".
cap_login() {
    in_box cap1 cryptosense 'set -a; . /etc/cryptosense-analyzer/config; psql "$DATABASE_URL" -XAtc \
"select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()"'
}

# The certificate a server serves, as the control node reads it (STARTTLS of PostgreSQL).
served_sha256() { # HOST
    openssl s_client -starttls postgres -connect "${ip[$1]}:${port[$1]}" -servername "$1.vagrant.test" </dev/null 2>/dev/null |
        openssl x509 -noout -fingerprint -sha256 | cut -d= -f2
}

no_changes() { # FILE NAME: every host of a recap reports changed=0
    if grep -E ' : ok=' "$1" | grep -vq 'changed=0 '; then
        echo "$2: a host reported changes"
        return 1
    fi
}

s_cast() {
    local h out d=/etc/cast-imaging/ssl
    cas playbook playbooks/cast-imaging.yml -i "$inv" | tee "$work/cast.txt" || return 1
    grep -Eq '^cast1 +: ok=[1-9][0-9]* +changed=[1-9].*failed=0' "$work/cast.txt" || return 1
    # The files, owned by the service user; the keys readable by it alone.
    in_box cast1 root "stat -c '%n %U %a' $d/client.crt $d/client.key $d/client.pk8 $d/client.pfx $d/root.crt" |
        tee "$work/cast-files.txt"
    grep -qx "$d/client.key cast 600" "$work/cast-files.txt" || return 1
    grep -qx "$d/client.pk8 cast 600" "$work/cast-files.txt" || return 1
    grep -qx "$d/client.crt cast 644" "$work/cast-files.txt" || return 1
    in_box cast1 root 'cat /etc/cast-imaging/SSLParameters.ini; grep CASTCONNECTIONEXTRAPARAMETERS /etc/environment' |
        tee "$work/cast-ini.txt"
    for h in pg13 pg15 pg17; do
        grep -qx "\[$h.vagrant.test:${port[$h]}\]" "$work/cast-ini.txt" || { echo "no section for $h"; return 1; }
    done
    grep -qx 'CASTCONNECTIONEXTRAPARAMETERS=/etc/cast-imaging/SSLParameters.ini' "$work/cast-ini.txt" || return 1
    # libpq (psql) from cast1 as `cast`, and pgjdbc in cast1's JRE with the PKCS#8 key, the way
    # CAST's Java components log in (PgLogin compiled here, run there).
    mkdir -p "$work/jdbc"
    javac --release 17 -d "$work/jdbc" tests/fixtures/jdbc/PgLogin.java || return 1
    docker exec "$prefix"cast1 mkdir -p /opt/castellan-jdbc || return 1
    docker cp -L /usr/share/java/postgresql.jar "$prefix"cast1:/opt/castellan-jdbc/postgresql.jar || return 1
    docker cp "$work/jdbc/PgLogin.class" "$prefix"cast1:/opt/castellan-jdbc/PgLogin.class || return 1
    docker exec "$prefix"cast1 chmod -R a+rX /opt/castellan-jdbc || return 1
    for h in pg13 pg15 pg17; do
        out=$(cast_login $h) || return 1
        echo "cast1 -> $h (psql as cast): $out"
        [[ $out == "${h#pg}|operator|t|"*CN=operator* ]] || return 1
        out=$(in_box cast1 cast "java -cp /opt/castellan-jdbc:/opt/castellan-jdbc/postgresql.jar PgLogin \
$h.vagrant.test ${port[$h]} postgres operator $d/client.crt $d/client.pk8 $d/root.crt verify-full") || return 1
        echo "cast1 -> $h (pgjdbc as cast): $(tr '\n' ' ' <<<"$out")"
        [[ $out == $'current_user=operator\nssl=true' ]] || return 1
    done
    # The same run again: nothing to change anywhere.
    cas playbook playbooks/cast-imaging.yml -i "$inv" | tee "$work/cast-rerun.txt" || return 1
    no_changes "$work/cast-rerun.txt" "cast-imaging.yml re-run"
}

# CAP's rpm files for a version: fixture packages (tests/fixtures/recording/README.md).
cap_packages() { # VERSION
    local d=$work/cap/$1 k
    mkdir -p "$d"
    for k in web worker; do
        printf 'Name: cryptosense-analyzer-%s\nEVR: 0:%s\nArch: x86_64\n' "$k" "$1" >"$d/cryptosense-analyzer-$k-$1.rpm"
    done
}

# The fixtures' calls on cap1 after the first $1 lines, without the package queries (`rpm`).
cap_calls() {
    in_box cap1 root "tail -n +$(($1 + 1)) /var/lib/castellan-fixtures/calls.log" | cut -d' ' -f2- | grep -v '^cap1 rpm '
}
cap_calls_count() { in_box cap1 root 'cat /var/lib/castellan-fixtures/calls.log 2>/dev/null | wc -l'; }

cap_run() { # VERSION [ARG...]: cap-upgrade.yml for that version
    local v=$1
    shift
    cas playbook playbooks/cap-upgrade.yml -i "$inv" -e "cap_version=$v" -e "cap_package_dir=$work/cap/$v" "$@"
}

s_cap() {
    local n out
    cap_packages 1.0.0-1
    cap_packages 1.1.0-1
    # A new installation: the web package, `cs database init`, `cs restart` and the health check.
    n=$(cap_calls_count)
    cap_run 1.0.0-1 -e cap_database_init=true | tee "$work/cap-install.txt" || return 1
    cap_calls "$n" | tee "$work/cap-calls-install.txt"
    printf '%s\n' 'cap1 yum -y install /var/tmp/castellan-cap/cryptosense-analyzer-web-1.0.0-1.rpm' \
        'cap1 cs database init' 'cap1 cs restart' 'cap1 cs restart: done' 'cap1 cap-health' |
        diff -u - "$work/cap-calls-install.txt" || return 1
    # An upgrade: the new package, `cs database migrate`, a restart.
    n=$(cap_calls_count)
    cap_run 1.1.0-1 | tee "$work/cap-upgrade.txt" || return 1
    cap_calls "$n" | tee "$work/cap-calls-upgrade.txt"
    printf '%s\n' 'cap1 yum -y install /var/tmp/castellan-cap/cryptosense-analyzer-web-1.1.0-1.rpm' \
        'cap1 cs database migrate' 'cap1 cs restart' 'cap1 cs restart: done' 'cap1 cap-health' |
        diff -u - "$work/cap-calls-upgrade.txt" || return 1
    [[ $(in_box cap1 root 'cat /var/lib/castellan-fixtures/cap-database') == 0:1.1.0-1 ]] || return 1
    # The configuration: CAP's user alone reads it; its DATABASE_URL logs CAP in to pg15 over TLS
    # with the client certificate (CN cap), from cap1.
    [[ $(in_box cap1 root 'stat -c "%U %a" /etc/cryptosense-analyzer/config') == "cryptosense 600" ]] || return 1
    out=$(cap_login) || return 1
    echo "cap1 -> pg15 (DATABASE_URL as cryptosense): $out"
    [[ $out == 'cap|t' ]] || return 1
    # The same version again: nothing installed, migrated or restarted; changed=0.
    n=$(cap_calls_count)
    cap_run 1.1.0-1 | tee "$work/cap-again.txt" || return 1
    no_changes "$work/cap-again.txt" "cap-upgrade.yml re-run" || return 1
    out=$(cap_calls "$n")
    [[ -z $out ]] || { echo "calls on the re-run: $out"; return 1; }
}

# rotate-certs.yml with rotate_force: every server serves a new certificate, cast1's and cap1's
# client certificates are new, and every login still works (control node, cast1, cap1). Then a
# run with nothing due changes nothing.
s_rotate() {
    local h out cast_crt cap_crt
    declare -A before=()
    for h in pg13 pg15 pg17; do
        before[$h]=$(served_sha256 $h)
        [[ -n ${before[$h]} ]] || { echo "$h: no served certificate"; return 1; }
    done
    cast_crt=$(in_box cast1 root 'sha256sum </etc/cast-imaging/ssl/client.crt') || return 1
    cap_crt=$(in_box cap1 root 'sha256sum </etc/cryptosense-analyzer/ssl/client.crt') || return 1
    cas playbook playbooks/rotate-certs.yml -i "$inv" -e rotate_force=true | tee "$work/rotate.txt" || return 1
    for h in pg13 pg15 pg17; do
        out=$(served_sha256 $h)
        echo "$h serves ${out:0:23}... (was ${before[$h]:0:23}...)"
        [[ -n $out && $out != "${before[$h]}" ]] || { echo "$h: the served certificate did not change"; return 1; }
    done
    [[ $(in_box cast1 root 'sha256sum </etc/cast-imaging/ssl/client.crt') != "$cast_crt" ]] ||
        { echo "cast1: client.crt not renewed"; return 1; }
    [[ $(in_box cap1 root 'sha256sum </etc/cryptosense-analyzer/ssl/client.crt') != "$cap_crt" ]] ||
        { echo "cap1: client.crt not renewed"; return 1; }
    s_login || return 1
    for h in pg13 pg15 pg17; do
        out=$(cast_login $h) || return 1
        echo "cast1 -> $h after the rotation: $out"
        [[ $out == "${h#pg}|operator|t|"*CN=operator* ]] || return 1
    done
    out=$(cap_login) || return 1
    echo "cap1 -> pg15 after the rotation: $out"
    [[ $out == 'cap|t' ]] || return 1
    # Nothing due now: changed=0 everywhere.
    cas playbook playbooks/rotate-certs.yml -i "$inv" | tee "$work/rotate-again.txt" || return 1
    no_changes "$work/rotate-again.txt" "rotate-certs.yml with nothing due"
}

# A file a module writes lands in the container, not on this machine.
s_remote_file() {
    local f=/tmp/castellan-vagrant-guard-$$
    cas playbook tests/vagrant/guard.yml -i "$inv" -e "guard_path=$f" || return 1
    local h
    for h in pg13 pg15 pg17 cast1 cap1; do
        docker exec "$prefix$h" grep -qx "written on $h" "$f" || { echo "$h: $f missing in the container"; return 1; }
    done
    [[ ! -e $f ]] || { echo "$f exists on the control node"; return 1; }
    echo "$f: in the 5 containers, absent on the control node"
}

# `docker network disconnect`: the host stops answering; castellan gives up after the connection
# timeout (ansible_timeout=5) and reports it unreachable; the others finish; exit 3.
s_disconnect() {
    docker network disconnect "$docker_net" "$prefix"pg17 || return 1
    local t0=$SECONDS rc
    cas playbook tests/vagrant/ping.yml -i "$inv" -e ansible_timeout=5 | tee "$work/disconnect.txt"
    rc=${PIPESTATUS[0]}
    local took=$((SECONDS - t0))
    docker network connect --ip "${ip[pg17]}" "$docker_net" "$prefix"pg17 || return 1
    echo "exit $rc after ${took}s"
    [[ $rc == 3 ]] || return 1
    ((took <= 20)) || { echo "took ${took}s (timeout 5s)"; return 1; }
    grep -Eq '^pg17 .*unreachable=1' "$work/disconnect.txt" || return 1
    grep -q 'timed out' "$work/disconnect.txt" || return 1
    for h in pg13 pg15 cast1 cap1; do
        grep -Eq "^$h +: ok=[1-9].*unreachable=0 +failed=0" "$work/disconnect.txt" || return 1
    done
}

# `docker kill` of pg15 while a run is under way: pg15 unreachable, the others finish, exit 3.
s_kill() {
    local rc
    ( sleep 4; docker kill "$prefix"pg15 >/dev/null ) &
    local killer=$!
    cas playbook tests/vagrant/slow.yml -i "$inv" | tee "$work/kill.txt"
    rc=${PIPESTATUS[0]}
    wait $killer
    echo "exit $rc"
    [[ $rc == 3 ]] || return 1
    grep -Eq '^pg15 .*unreachable=1' "$work/kill.txt" || return 1
    for h in pg13 pg17 cast1 cap1; do
        grep -Eq "^$h +: ok=[1-9].*unreachable=0 +failed=0" "$work/kill.txt" || return 1
        docker exec "$prefix$h" test -f /tmp/castellan-vagrant-slow-done || return 1
    done
}

step setup s_setup && step images s_images && step up s_up && step inventory s_inventory || exit 1
step enable-mtls s_mtls && step rerun-changed-0 s_rerun
step hba-per-version s_hba
step verify-full-login s_login
step cast-imaging s_cast
step cap-upgrade s_cap
step rotate-certs s_rotate
step remote-file s_remote_file
step network-disconnect s_disconnect
step docker-kill s_kill
exit $((failed ? 1 : 0))
