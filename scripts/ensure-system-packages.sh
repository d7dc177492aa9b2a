#!/usr/bin/env bash
# Makes sure the Debian packages in scripts/system-packages.txt are installed, before the suites start
# failing one by one for lack of them. Installs them as root where apt-get exists; anywhere else it stops
# at once and prints the one command that would fix it.
#   SYSTEM_PACKAGES_FILE        another list (one package a line, `#` starts a comment)
#   ENSURE_PACKAGES_NO_INSTALL  set to 1 to only report, never install
set -euo pipefail

list="${SYSTEM_PACKAGES_FILE:-$(dirname "$0")/system-packages.txt}"
if [ ! -r "$list" ]; then
  echo "ensure-system-packages: cannot read the package list $list" >&2
  exit 2
fi

missing=()
while IFS= read -r line || [ -n "$line" ]; do
  pkg="${line%%#*}"
  pkg="${pkg//[[:space:]]/}"
  [ -z "$pkg" ] && continue
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done <"$list"

[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 && [ "${ENSURE_PACKAGES_NO_INSTALL:-0}" != 1 ]; then
  echo "ensure-system-packages: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo "
echo "ensure-system-packages: missing Debian packages: ${missing[*]}" >&2
echo "Install them with:" >&2
echo "  ${sudo}apt-get install -y --no-install-recommends ${missing[*]}" >&2
exit 1
