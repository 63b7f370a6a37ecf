#!/usr/bin/env bash
# Builds the base images of the Vagrant Docker provider without a registry: a minimal Debian root
# filesystem made by `debootstrap --variant=minbase` from Debian's mirror, `docker import`ed.
#
#   bash vagrant/images/build.sh [IMAGE...]     # default: bullseye bookworm trixie node
#
#   image                          suite     holds (besides openssh-server and sudo)     machines
#   castellan-vagrant:bullseye     bullseye  PostgreSQL 13 server                         pg13
#   castellan-vagrant:bookworm     bookworm  PostgreSQL 15 server                         pg15
#   castellan-vagrant:trixie       trixie    PostgreSQL 17 server                         pg17
#   castellan-vagrant:node         bookworm  psql 15, openssl, a headless JRE (17)        cast1, cap1
#
# Nothing else: no Python, no systemd. No cluster is created (the Vagrantfile's provisioners make
# one per machine). User `vagrant` (sudo without a password) accepts Vagrant's public insecure
# key, which `vagrant up` replaces by a key it generates per machine (config.ssh.insert_key). The
# container runs `ssh-keygen -A` (host keys made per container, not baked into the image) then sshd
# in the foreground, which is what the Docker provider's `has_ssh` needs.
#
# The images are built in parallel (CASTELLAN_IMAGE_JOBS, default 4: debootstrap mostly waits
# for the mirror and the disk), each one's log shown when it fails.
# Cache: the image carries the label castellan.inputs = sha256 of this script and the image's
# name; an image whose label matches is kept (a second build takes about a second). Downloaded
# .debs are kept per image in $CASTELLAN_DEBOOTSTRAP_CACHE/NAME (default
# /var/cache/castellan-debootstrap) so a rebuild on the same machine does not download again.
# CASTELLAN_IMAGE_REBUILD=1 forces a build. Every build is verified: a container of the new image
# must start sshd (a host key served on port 22) and hold what the table says; no container is
# left behind. Needs root, debootstrap and a running Docker daemon (tests/vagrant/setup.sh
# installs debootstrap). Cold and cached timings: vagrant/README.md.
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
# A debootstrap stopped half way leaves /proc (and more) mounted in the root filesystem: those
# are unmounted first, and rm never crosses into another file system.
cleanup() {
  [ -z "$cid" ] || docker rm -f "$cid" >/dev/null 2>&1 || true
  [ -n "$root" ] || return 0
  local m
  for m in $(awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf --one-file-system "$root" "$root.log"
}
trap cleanup EXIT

# spec NAME: set suite, major (PostgreSQL major version) and include (debootstrap --include) of
# image NAME; server=1 when the image holds the PostgreSQL server.
spec() {
  case "$1" in
    bullseye) suite=bullseye major=13 server=1 ;;
    bookworm) suite=bookworm major=15 server=1 ;;
    trixie) suite=trixie major=17 server=1 ;;
    node) suite=bookworm major=15 server=0 ;;
    *) echo "build.sh: unknown image '$1' (bullseye, bookworm, trixie, node)" >&2; return 1 ;;
  esac
  if [ "$server" = 1 ]; then
    include="openssh-server,sudo,postgresql-$major"
  else
    # A CAST Imaging node or CAP VM: the client side only; the JRE is bookworm's default (17).
    include="openssh-server,sudo,postgresql-client-$major,openssl,openjdk-17-jre-headless"
  fi
}

inputs_hash() {
  { cat "$0"; echo "image=$1"; cat "$insecure_pub"; } | sha256sum | cut -d' ' -f1
}

verify() {
  local image="$1" ip version keys=""
  cid="$(docker run -d --rm "$image")"
  ip="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$cid")"
  for _ in $(seq 1 50); do
    keys="$(ssh-keyscan -T 2 -t ed25519 "$ip" 2>/dev/null || true)"
    [ -n "$keys" ] && break
    sleep 0.2
  done
  [ -n "$keys" ] || { echo "build.sh: $image: sshd did not answer on $ip:22" >&2; docker logs "$cid" >&2; return 1; }
  if [ "$server" = 1 ]; then
    version="$(docker exec "$cid" "/usr/lib/postgresql/$major/bin/postgres" --version)"
  else
    version="$(docker exec "$cid" psql --version)"
    if docker exec "$cid" test -e "/usr/lib/postgresql/$major/bin/postgres"; then
      echo "build.sh: $image: has a PostgreSQL server (a client node must not)" >&2
      return 1
    fi
    version="$version, $(docker exec "$cid" openssl version | cut -d' ' -f1-2)"
    version="$version, java $(docker exec "$cid" java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.version = //p')"
  fi
  case "$version" in
    *"PostgreSQL) $major."*) ;;
    *) echo "build.sh: $image: expected PostgreSQL $major, got: $version" >&2; return 1 ;;
  esac
  case "$version" in
    *"java ") echo "build.sh: $image: no working java: $version" >&2; return 1 ;;
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
  local name="$1" hash image have start suite major server include
  spec "$name"
  hash="$(inputs_hash "$name")"
  image="castellan-vagrant:$name"
  have="$(docker image inspect -f '{{index .Config.Labels "castellan.inputs"}}' "$image" 2>/dev/null || true)"
  if [ "$have" = "$hash" ] && [ "${CASTELLAN_IMAGE_REBUILD:-0}" != 1 ]; then
    echo "build.sh: $image is up to date (inputs $hash)"
    return 0
  fi
  start=$SECONDS
  mkdir -p "$cache/$name"
  root="$(mktemp -d "${TMPDIR:-/tmp}/castellan-rootfs-$name.XXXXXX")"
  echo "build.sh: debootstrap $suite ($include) into $root"
  debootstrap --variant=minbase --cache-dir="$cache/$name" --include="$include" \
    "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -30 "$root.log" >&2
    return 1
  }
  # The server package's postinst made cluster `main`: the machines make their own.
  [ "$server" = 0 ] || chroot "$root" sh -c "pg_dropcluster $major main 2>/dev/null || true"
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
    --change "LABEL castellan.inputs=$hash castellan.image=$name castellan.suite=$suite castellan.postgresql=$major" \
    - "$image" >/dev/null
  rm -rf "$root" "$root.log"
  root=""
  echo "build.sh: $image built in $((SECONDS - start)) s"
  verify "$image"
  # The image this one replaces (now untagged) goes, unless a container still uses it.
  [ -z "$previous" ] || docker rmi "$previous" >/dev/null 2>&1 || true
}

# One image in this process (its own clean-up trap): what the parallel builds below run.
if [ "${1:-}" = --one ]; then
  build_one "$2"
  exit
fi

names=("$@")
[ "${#names[@]}" -gt 0 ] || names=(bullseye bookworm trixie node)
for n in "${names[@]}"; do spec "$n"; done
logs="${TMPDIR:-/tmp}/castellan-images.$$"
mkdir -p "$logs"
start=$SECONDS
printf '%s\n' "${names[@]}" |
  xargs -P "${CASTELLAN_IMAGE_JOBS:-4}" -I{} sh -c 'bash "$1" --one "$2" >"$3/$2.log" 2>&1; echo $? >"$3/$2.rc"' \
    sh "$0" {} "$logs"
failed=()
for n in "${names[@]}"; do
  if [ "$(cat "$logs/$n.rc" 2>/dev/null)" = 0 ]; then
    grep '^build.sh: ' "$logs/$n.log" || true
  else
    echo "build.sh: image $n FAILED:" >&2
    tail -40 "$logs/$n.log" >&2
    failed+=("$n")
  fi
done
rm -rf "$logs"
[ "${#failed[@]}" = 0 ] || { echo "build.sh: failed: ${failed[*]}" >&2; exit 1; }
echo "build.sh: ${#names[@]} image(s) ready in $((SECONDS - start)) s"
