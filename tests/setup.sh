#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine: the openssl CLI (PKI checks), the
# PostgreSQL 15 server and client (real TLS logins), libpq's and OpenSSL's headers and a C compiler
# (a libpq client the rotation test builds), openssh-server (the SSH test fleet), Python's
# venv module and the real `ansible-vault` (PyPI ansible-core, in a venv under target/: the vault
# tests encrypt their files with it), a JDK and pgjdbc (tests/fixtures/jdbc/PgLogin.java: a JDBC
# login with client.pk8, as CAST's Java components), inotify-tools and PyPI prometheus-client in a
# venv under target/ (tests/monitoring/tools.sh: the certs status tests watch file opens and parse
# metrics), systemd's systemd-analyze (tests/schedule.rs verifies the units `schedule install`
# writes; it needs no systemd running as PID 1), curl (role cap's URL hooks and health URL, called
# from the control node in tests/cap_upgrade.rs).
# Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail

need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql postgresql-client)
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need+=(openssh-server openssh-client)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3 python3-venv)
# tests/rotation.rs builds a libpq client (tests/fixtures/rotation/pgloop.c).
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
[ -f /usr/include/postgresql/libpq-fe.h ] || need+=(libpq-dev)
[ -f /usr/include/openssl/x509.h ] || need+=(libssl-dev)
command -v javac >/dev/null 2>&1 || need+=(default-jdk-headless)
[ -f /usr/share/java/postgresql.jar ] || need+=(libpostgresql-jdbc-java)
command -v inotifywait >/dev/null 2>&1 || need+=(inotify-tools)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v curl >/dev/null 2>&1 || need+=(curl)

if [ "${#need[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
vault=$(bash "$(dirname "$0")/vault/ansible-vault.sh")
prom_python=$(bash "$(dirname "$0")/monitoring/tools.sh" | sed -n 1p)
echo "setup: openssl $(openssl version | cut -d' ' -f2), postgresql 15 at /usr/lib/postgresql/15/bin, sshd ready, $("$vault" --version | sed -n 1p), prometheus-client $("$prom_python" -c 'import importlib.metadata as m; print(m.version("prometheus-client"))'), java $(java -version 2>&1 | awk -F'"' 'NR == 1 { print $2 }') with /usr/share/java/postgresql.jar, $(curl --version | sed -n '1s/ (.*//p')"
