#!/usr/bin/env bash
# Installs the system packages torchdojo needs, or says exactly which are missing.
#   scripts/system-deps.sh run    what serving needs: bubblewrap (the sandbox), libseccomp, util-linux
#   scripts/system-deps.sh test   that, plus what the test suite drives
set -euo pipefail
profile=${1:-run}

missing=()
need() { # need PACKAGE CHECK-COMMAND...
  local package=$1; shift
  "$@" >/dev/null 2>&1 || missing+=("$package")
}
need bubblewrap command -v bwrap
need libseccomp2 sh -c 'ldconfig -p | grep -q libseccomp.so.2'
need util-linux sh -c 'command -v setpriv && command -v prlimit'
python3 -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null || missing+=(python3)
need nodejs command -v node
need npm command -v npm
if [ "$profile" = test ]; then
  need chromium command -v chromium
  need postgresql sh -c 'ls /usr/lib/postgresql/*/bin/initdb'
fi
python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
# shellcheck disable=SC2207 # package names have no spaces
missing=($(printf '%s\n' "${missing[@]}" | sort -u))
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "Installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "torchdojo needs these system packages: ${missing[*]}" >&2
  echo "Install them (Debian/Ubuntu): sudo apt-get install -y ${missing[*]}" >&2
  echo "then run the same make command again." >&2
  exit 1
fi
