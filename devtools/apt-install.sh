#!/usr/bin/env bash
# Installs Debian/Ubuntu packages with apt-get (as root, or through sudo), only where apt-get exists; elsewhere
# it says what to install instead and fails. Usage: apt-install.sh "<what to do elsewhere>" package...
set -eu
advice=$1
shift
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Missing: $*. This system has no apt-get; $advice" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "Missing: $*. Install them as root (apt-get install $*); $advice" >&2; exit 1; }
  sudo="sudo -E"
fi
echo "Installing $* with apt-get" >&2
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >&2
