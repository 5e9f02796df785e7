#!/usr/bin/env bash
# Prints the path of a Python matching the Lambda runtime (3.12, else 3.13): on PATH, else through pyenv.
# pyenv's shims answer `command -v` even for versions that are not active, so each candidate is run once.
set -u
for version in 3.12 3.13; do
  if command -v "python$version" >/dev/null 2>&1 && "python$version" -c 'import sys' >/dev/null 2>&1; then
    "python$version" -c 'import sys; print(sys.executable)'
    exit 0
  fi
  if command -v pyenv >/dev/null 2>&1; then
    prefix=$(pyenv prefix "$version" 2>/dev/null) && [ -x "$prefix/bin/python$version" ] && {
      echo "$prefix/bin/python$version"
      exit 0
    }
  fi
done
echo "No Python 3.12 or 3.13 found (the Lambda runtime is python3.12): install one, e.g. 'pyenv install 3.12'" >&2
exit 1
