#!/usr/bin/env bash
# Installs what the Vagrant suite needs on a Debian machine whose Docker daemon already runs:
# debootstrap (base images, vagrant/images/build.sh), Vagrant 2.3 with its Docker provider and
# the vagrant-libvirt plugin.
# Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v vagrant >/dev/null || need+=(vagrant)
# The libvirt provider plugin (Ruby only, no libvirt daemon): `vagrant validate` checks the
# Vagrantfile's libvirt configuration with it.
dpkg -s vagrant-libvirt >/dev/null 2>&1 || need+=(vagrant-libvirt)
if [ "${#need[@]}" -gt 0 ]; then
  echo "vagrant setup: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
docker info >/dev/null 2>&1 || { echo "vagrant setup: the Docker daemon is not reachable (docker info)" >&2; exit 1; }
