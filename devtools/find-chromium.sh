#!/usr/bin/env bash
# Prints the Chromium or Chrome the browser tests drive, found as Playwright users expect: $CHROMIUM when set
# (a path, or a command on PATH), else one on PATH, else macOS's usual application paths; installed with
# apt-get only on Debian. Playwright's own browser download does not work offline, so it is never used. Each
# candidate must run `--version`: Ubuntu's apt `chromium-browser` is a stub for the snap, which it cannot start
# without snapd. Paths may contain spaces.
set -u
runs() {
  [ -f "$1" ] && [ -x "$1" ] && "$1" --version >/dev/null 2>&1
}
if [ -n "${CHROMIUM:-}" ]; then
  case "$CHROMIUM" in
    */*) candidate=$CHROMIUM ;;
    *) candidate=$(type -P -- "$CHROMIUM" 2>/dev/null || true) ;;
  esac
  if [ -n "$candidate" ] && [ -f "$candidate" ] && [ -x "$candidate" ]; then
    echo "$candidate"
    exit 0
  fi
  echo "CHROMIUM=$CHROMIUM is not an executable file nor a command on PATH: point it at a Chromium or Chrome binary" >&2
  exit 1
fi
stubs=""
find_one() {
  local name path
  for name in chromium chromium-browser google-chrome google-chrome-stable chrome; do
    path=$(type -P -- "$name" 2>/dev/null) || continue
    runs "$path" && { echo "$path"; return 0; }
    stubs="$stubs $path"
  done
  for path in "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome" \
    "/Applications/Chromium.app/Contents/MacOS/Chromium"; do
    [ -x "$path" ] && { echo "$path"; return 0; }
  done
  return 1
}
find_one && exit 0
advice="install Chrome or Chromium (brew install --cask google-chrome, dnf install chromium, pacman -S chromium;
on Ubuntu Google Chrome's .deb from https://www.google.com/chrome/ or, where snapd runs, sudo snap install chromium)
or point CHROMIUM at one: CHROMIUM=/path/to/chrome make test"
os_id=$(. "${OS_RELEASE:-/etc/os-release}" 2>/dev/null && echo "${ID:-}")
if [ "$os_id" = ubuntu ] || [ -n "$stubs" ]; then
  # Ubuntu's apt chromium only installs the snap's stub: it would not run where snapd does not.
  echo "No Chrome or Chromium that runs${stubs:+ (found, but failing --version:$stubs)}. On Ubuntu apt's chromium is a" \
    "transitional package for the snap, so it is not installed here; $advice" >&2
  exit 1
fi
"$(dirname "$0")/apt-install.sh" "$advice" chromium fonts-liberation || exit 1
find_one && exit 0
echo "apt-get installed chromium, but no Chrome or Chromium runs${stubs:+ (failing --version:$stubs)}; $advice" >&2
exit 1
