#!/usr/bin/env bash
# Runs a command on this machine as a machine with only the run packages
# would run it: the test-only packages (scripts/install-deps.sh --list test)
# and everything only they pull in can't be seen by it, although they stay
# installed. scripts/check-run-path.sh uses it in CI; by hand it shows a new
# user's first run without a second machine:
#   scripts/without-test-packages.sh ./scripts/run.sh
#
# How: the hidden packages are the Depends closure of the test list minus
# that of the run list and of the base system (Essential or Priority
# required packages), scripts/lib/hidden-packages.awk. In a private mount
# namespace, overlays are mounted over /usr, /etc and /opt and the files only
# those packages own are removed through them (scripts/lib/whiteouts.awk picks
# the paths), which leaves whiteouts in a tmpfs: the machine itself is not
# touched, and inside, CMake, the compiler, the linker and the dynamic loader
# all see a machine without those packages. dpkg's database still lists them,
# so scripts/install-deps.sh has nothing to install in there.
#
# Needs root (unshare, mount). The command's exit status is the script's.
set -euo pipefail
self=$(realpath "$0")
root=$(dirname "$(dirname "$self")")

if [[ "${NOTIFY_HIDING_WORK:-}" == "" ]]; then
  if (($# == 0)); then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
  fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "without-test-packages: needs root to hide packages in a mount namespace" >&2
    exit 1
  fi
  work=$(mktemp -d /tmp/notify-hiding.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  dpkg-query -W -f='${db:Status-Abbrev}\t${Package}\t${Provides}\t${Depends}, ${Pre-Depends}\t${Essential}\t${Priority}\n' |
    awk -v run="$("$root/scripts/install-deps.sh" --list run | tr '\n' ' ')" \
      -v test="$("$root/scripts/install-deps.sh" --list test | tr '\n' ' ')" \
      -f "$root/scripts/lib/hidden-packages.awk" | sort >"$work/packages"
  awk -f "$root/scripts/lib/whiteouts.awk" "$work/packages" /var/lib/dpkg/info/*.list | sort >"$work/paths"
  echo "without-test-packages: hiding $(wc -l <"$work/packages") packages ($(wc -l <"$work/paths") paths):" \
    "$(grep -xF -f <("$root/scripts/install-deps.sh" --list test) "$work/packages" | tr '\n' ' ')and what only they need" >&2
  status=0
  NOTIFY_HIDING_WORK="$work" unshare --mount --propagation private -- "$self" "$@" || status=$?
  exit "$status"
fi

# ---- inside the private mount namespace
work=$NOTIFY_HIDING_WORK
unset NOTIFY_HIDING_WORK
mkdir -p "$work/layers"
mount -t tmpfs notify-hiding "$work/layers"
for top in usr etc opt; do
  [[ -d /$top ]] || continue
  mkdir -p "$work/layers/$top/upper" "$work/layers/$top/work"
  mount -t overlay notify-hiding \
    -o "lowerdir=/$top,upperdir=$work/layers/$top/upper,workdir=$work/layers/$top/work" "/$top"
done
# Removing a path through an overlay leaves a whiteout in its upper layer:
# the path is gone in this namespace only.
xargs -r -d '\n' rm -rf -- <"$work/paths"
while IFS= read -r path; do
  if [[ -e $path || -L $path ]]; then
    echo "without-test-packages: could not hide $path" >&2
    exit 1
  fi
done <"$work/paths"
exec "$@"
