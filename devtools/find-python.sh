#!/usr/bin/env bash
# Prints the path of a Python 3.12, the Lambda runtime's version: on PATH, else through pyenv. Only 3.12: `sam
# build` refuses any other ("Binary validation failed ... python3.12") and the tests run the build under it.
# pyenv's shims answer `command -v` even for versions that are not active, so each candidate is run once.
set -u
if command -v python3.12 >/dev/null 2>&1 && python3.12 -c 'import sys' >/dev/null 2>&1; then
  python3.12 -c 'import sys; print(sys.executable)'
  exit 0
fi
if command -v pyenv >/dev/null 2>&1; then
  prefix=$(pyenv prefix 3.12 2>/dev/null) && [ -x "$prefix/bin/python3.12" ] && {
    echo "$prefix/bin/python3.12"
    exit 0
  }
fi
found=""
for other in python3 python3.13 python3.14 python3.11; do
  if command -v "$other" >/dev/null 2>&1 && version=$("$other" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); then
    found=" (found Python $version as $(command -v "$other"), which sam build refuses)"
    break
  fi
done
cat >&2 <<MESSAGE
Python 3.12 is needed: the Lambda runtime is python3.12 and \`sam build\` checks for exactly that version$found.
Install it, then run make again:
  pyenv install 3.12          (any system, https://github.com/pyenv/pyenv)
  brew install python@3.12    (macOS)
  sudo apt-get install python3.12 / sudo dnf install python3.12 (Linux, where the distribution packages it)
MESSAGE
exit 1
