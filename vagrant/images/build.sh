#!/usr/bin/env bash
# Builds the base images of the Vagrant Docker provider without a registry: a minimal Debian root
# filesystem made by `debootstrap --variant=minbase` from Debian's mirror, `docker import`ed.
#
#   bash vagrant/images/build.sh [SUITE...]     # default: bullseye bookworm trixie
#
#   image                          suite     PostgreSQL
#   castellan-vagrant:bullseye     bullseye  13
#   castellan-vagrant:bookworm     bookworm  15
#   castellan-vagrant:trixie       trixie    17
#
# Each image holds openssh-server, sudo and the PostgreSQL server (which brings psql), nothing else:
# no Python, no systemd. No cluster is created (the Vagrantfile's provisioners make one per
# machine). User `vagrant` (sudo without a password) accepts Vagrant's public insecure key, which
# `vagrant up` replaces by a key it generates per machine (config.ssh.insert_key). The container
# runs `ssh-keygen -A` (host keys made per container, not baked into the image) then sshd in the
# foreground, which is what the Docker provider's `has_ssh` needs.
#
# Cache: the image carries the label castellan.inputs = sha256 of this script and the suite; an
# image whose label matches is kept (a second build takes about a second). Downloaded .debs are
# kept in $CASTELLAN_DEBOOTSTRAP_CACHE (default /var/cache/castellan-debootstrap) so a rebuild on
# the same machine does not download again. CASTELLAN_IMAGE_REBUILD=1 forces a build.
# Every build is verified: a container of the new image must start sshd (a host key served on
# port 22) and report the expected PostgreSQL major version; no container is left behind.
# Needs root, debootstrap and a running Docker daemon (tests/vagrant/setup.sh installs debootstrap).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
mirror="${CASTELLAN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cache="${CASTELLAN_DEBOOTSTRAP_CACHE:-/var/cache/castellan-debootstrap}"
insecure_pub="${CASTELLAN_VAGRANT_PUBKEY:-}"
if [ -z "$insecure_pub" ]; then
  insecure_pub="$(find /usr/share/rubygems-integration /opt/vagrant /usr/lib/ruby -path '*vagrant*/keys/vagrant.pub' 2>/dev/null | head -1 || true)"
fi
[ -n "$insecure_pub" ] && [ -r "$insecure_pub" ] || {
  echo "build.sh: Vagrant's keys/vagrant.pub not found (install vagrant, or set CASTELLAN_VAGRANT_PUBKEY)" >&2
  exit 1
}

# What a failed or interrupted build leaves: removed on exit.
root=""
cid=""
cleanup() {
  [ -z "$cid" ] || docker rm -f "$cid" >/dev/null 2>&1 || true
  [ -z "$root" ] || rm -rf "$root" "$root.log"
}
trap cleanup EXIT

pg_major() {
  case "$1" in
    bullseye) echo 13 ;;
    bookworm) echo 15 ;;
    trixie) echo 17 ;;
    *) echo "build.sh: unknown suite '$1' (bullseye, bookworm, trixie)" >&2; return 1 ;;
  esac
}

inputs_hash() {
  { cat "$0"; echo "suite=$1"; cat "$insecure_pub"; } | sha256sum | cut -d' ' -f1
}

verify() {
  local image="$1" major="$2" ip version keys=""
  cid="$(docker run -d --rm "$image")"
  ip="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$cid")"
  for _ in $(seq 1 50); do
    keys="$(ssh-keyscan -T 2 -t ed25519 "$ip" 2>/dev/null || true)"
    [ -n "$keys" ] && break
    sleep 0.2
  done
  [ -n "$keys" ] || { echo "build.sh: $image: sshd did not answer on $ip:22" >&2; docker logs "$cid" >&2; return 1; }
  version="$(docker exec "$cid" "/usr/lib/postgresql/$major/bin/postgres" --version)"
  case "$version" in
    *"PostgreSQL) $major."*) ;;
    *) echo "build.sh: $image: expected PostgreSQL $major, got: $version" >&2; return 1 ;;
  esac
  if docker exec "$cid" sh -c 'command -v python3 || command -v python' >/dev/null 2>&1; then
    echo "build.sh: $image: has a Python (targets must not need one)" >&2
    return 1
  fi
  docker exec "$cid" sudo -n -u vagrant true
  docker rm -f "$cid" >/dev/null
  cid=""
  echo "build.sh: $image verified: sshd up, $version"
}

build_one() {
  local suite="$1" major hash image have start
  major="$(pg_major "$suite")"
  hash="$(inputs_hash "$suite")"
  image="castellan-vagrant:$suite"
  have="$(docker image inspect -f '{{index .Config.Labels "castellan.inputs"}}' "$image" 2>/dev/null || true)"
  if [ "$have" = "$hash" ] && [ "${CASTELLAN_IMAGE_REBUILD:-0}" != 1 ]; then
    echo "build.sh: $image is up to date (inputs $hash)"
    return 0
  fi
  start=$SECONDS
  mkdir -p "$cache/$suite"
  root="$(mktemp -d "${TMPDIR:-/tmp}/castellan-rootfs-$suite.XXXXXX")"
  echo "build.sh: debootstrap $suite (PostgreSQL $major) into $root"
  debootstrap --variant=minbase --cache-dir="$cache/$suite" \
    --include="openssh-server,sudo,postgresql-$major" \
    "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -30 "$root.log" >&2
    return 1
  }
  # The package's postinst made cluster `main`: the machines make their own.
  chroot "$root" sh -c "pg_dropcluster $major main 2>/dev/null || true"
  chroot "$root" sh -c '
    set -e
    useradd -m -s /bin/bash vagrant
    install -d -m 0700 -o vagrant -g vagrant /home/vagrant/.ssh
    echo "vagrant ALL=(ALL) NOPASSWD: ALL" > /etc/sudoers.d/vagrant
    chmod 0440 /etc/sudoers.d/vagrant
    rm -f /etc/ssh/ssh_host_*
    mkdir -p /run/sshd
    printf "UseDNS no\nPasswordAuthentication no\n" > /etc/ssh/sshd_config.d/castellan.conf
    apt-get clean
    rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/locale/*
  '
  install -m 0600 -o 1000 -g 1000 "$insecure_pub" "$root/home/vagrant/.ssh/authorized_keys"
  chroot "$root" chown -R vagrant:vagrant /home/vagrant/.ssh
  local previous
  previous="$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)"
  tar -C "$root" --numeric-owner -c . | docker import \
    --change 'CMD ["/bin/sh", "-c", "mkdir -p /run/sshd && ssh-keygen -A && exec /usr/sbin/sshd -D -e"]' \
    --change "LABEL castellan.inputs=$hash castellan.suite=$suite castellan.postgresql=$major" \
    - "$image" >/dev/null
  rm -rf "$root" "$root.log"
  root=""
  echo "build.sh: $image built in $((SECONDS - start)) s"
  verify "$image" "$major"
  # The image this one replaces (now untagged) goes, unless a container still uses it.
  [ -z "$previous" ] || docker rmi "$previous" >/dev/null 2>&1 || true
}

suites=("$@")
[ "${#suites[@]}" -gt 0 ] || suites=(bullseye bookworm trixie)
for s in "${suites[@]}"; do
  build_one "$s"
done
