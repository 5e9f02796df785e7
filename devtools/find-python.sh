#!/usr/bin/env bash
# Prints the path of a Python 3.12, the Lambda runtime's version: $PYTHON when set, else python3.12, python3 or
# python on PATH, whichever reports 3.12, else through pyenv. Only 3.12: `sam build` refuses any other ("Binary
# validation failed ... python3.12") and the tests run the build under it. pyenv's shims answer `command -v`
# even for versions that are not active, so each candidate is run once, and its own sys.executable printed.
set -u
version_of() {
  "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null
}
if [ -n "${PYTHON:-}" ]; then
  version=$(version_of "$PYTHON")
  if [ "$version" = 3.12 ]; then
    "$PYTHON" -c 'import sys; print(sys.executable)'
    exit 0
  fi
  echo "PYTHON=$PYTHON is ${version:+Python $version, }not a Python 3.12 that runs: point it at one (PYTHON=/path/to/python3.12)" >&2
  exit 1
fi
found=""
for candidate in python3.12 python3 python; do
  command -v "$candidate" >/dev/null 2>&1 || continue
  version=$(version_of "$candidate") || continue
  if [ "$version" = 3.12 ]; then
    "$candidate" -c 'import sys; print(sys.executable)'
    exit 0
  fi
  [ -n "$found" ] || found=" (found Python $version as $(command -v "$candidate"), which sam build refuses)"
done
if command -v pyenv >/dev/null 2>&1; then
  prefix=$(pyenv prefix 3.12 2>/dev/null) && [ -x "$prefix/bin/python3.12" ] && {
    echo "$prefix/bin/python3.12"
    exit 0
  }
fi
for other in python3.13 python3.14 python3.11; do
  [ -z "$found" ] && command -v "$other" >/dev/null 2>&1 && version=$(version_of "$other") &&
    found=" (found Python $version as $(command -v "$other"), which sam build refuses)"
done
cat >&2 <<MESSAGE
Python 3.12 is needed: the Lambda runtime is python3.12 and \`sam build\` checks for exactly that version$found.
Install it, then run make again (or name one: PYTHON=/path/to/python3.12 make ...):
  pyenv install 3.12          (any system, https://github.com/pyenv/pyenv)
  brew install python@3.12    (macOS)
  sudo apt-get install python3.12 python3.12-venv / sudo dnf install python3.12 (Linux, where the distribution packages it)
MESSAGE
exit 1
