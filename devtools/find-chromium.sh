#!/usr/bin/env bash
# Prints the Chromium or Chrome the browser tests drive, found as Playwright users expect: $CHROMIUM when set,
# else one on PATH, else macOS's usual application paths; installed with apt-get only on Debian or Ubuntu.
# Playwright's own browser download does not work offline, so it is never used. Paths may contain spaces.
set -u
if [ -n "${CHROMIUM:-}" ]; then
  [ -x "$CHROMIUM" ] && { echo "$CHROMIUM"; exit 0; }
  echo "CHROMIUM=$CHROMIUM is not an executable file: point it at a Chromium or Chrome binary" >&2
  exit 1
fi
find_one() {
  local name
  for name in chromium chromium-browser google-chrome google-chrome-stable chrome; do
    command -v "$name" 2>/dev/null && return 0
  done
  for path in "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome" \
    "/Applications/Chromium.app/Contents/MacOS/Chromium"; do
    [ -x "$path" ] && { echo "$path"; return 0; }
  done
  return 1
}
find_one && exit 0
advice="install Chrome or Chromium (brew install --cask google-chrome, dnf install chromium, pacman -S chromium)
or point CHROMIUM at one: CHROMIUM=/path/to/chrome make test"
"$(dirname "$0")/apt-install.sh" "$advice" chromium fonts-liberation || exit 1
find_one
