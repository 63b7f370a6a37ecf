#!/usr/bin/env bash
# Engine overhead benchmark (not a test): N hosts with ansible_connection: local and a 10-task
# playbook whose tasks change nothing after the first run. Prints wall time and peak memory of
# the no-change run.   Usage: benches/local.sh [N=1000] [FORKS=50]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
forks=${2:-50}
work=$(mktemp -d /tmp/castellan-bench-local.XXXXXX)
trap 'rm -rf "$work"' EXIT
command -v /usr/bin/time >/dev/null 2>&1 || { apt-get install -y -qq time >/dev/null; }
cargo build --release -q
{
  echo "all:"
  echo "  vars: {ansible_connection: local, bench_root: $work}"
  echo "  children:"
  echo "    bench:"
  echo "      hosts:"
  for i in $(seq 1 "$n"); do echo "        h$i: {}"; done
} > "$work/inventory.yml"
cat > "$work/site.yml" <<'YML'
- hosts: bench
  vars:
    dir: "{{ bench_root }}/{{ inventory_hostname }}"
  tasks:
    - file: {path: "{{ dir }}", state: directory, mode: "0700"}
    - copy: {content: "listen_addresses = '*'\n", dest: "{{ dir }}/postgresql.conf", mode: "0600", force: no}
    - lineinfile: {path: "{{ dir }}/postgresql.conf", regexp: "^ssl ", line: "ssl = on"}
    - lineinfile: {path: "{{ dir }}/postgresql.conf", regexp: "^ssl_cert_file", line: "ssl_cert_file = 'server.crt'"}
    - lineinfile: {path: "{{ dir }}/postgresql.conf", regexp: "^ssl_key_file", line: "ssl_key_file = 'server.key'"}
    - blockinfile: {path: "{{ dir }}/pg_hba.conf", create: yes, block: "hostssl all all 0.0.0.0/0 cert"}
    - ini_file: {path: "{{ dir }}/client.ini", section: "{{ inventory_hostname }}:5432", option: sslmode, value: verify-full}
    - stat: {path: "{{ dir }}/postgresql.conf"}
      register: st
    - assert: {that: ["st.stat.mode == '0600'"]}
    - set_fact: {conf_checksum: "{{ st.stat.checksum }}"}
YML
bin=target/release/castellan
"$bin" playbook "$work/site.yml" -i "$work/inventory.yml" -f "$forks" --output json > "$work/first.json"
/usr/bin/time -v "$bin" playbook "$work/site.yml" -i "$work/inventory.yml" -f "$forks" --output json \
  > "$work/second.json" 2> "$work/time.txt"
changed=$(python3 -c "import json,sys; d=json.load(open('$work/second.json')); print(sum(h['changed'] for h in d['stats'].values()), sum(h['failed'] for h in d['stats'].values()))")
wall=$(grep "Elapsed (wall clock)" "$work/time.txt" | awk '{print $NF}')
rss=$(grep "Maximum resident set size" "$work/time.txt" | awk '{print $NF}')
echo "local hosts=$n forks=$forks tasks=10: no-change run wall=${wall} peak_rss=$((rss / 1024)) MiB (changed, failed = $changed)"
