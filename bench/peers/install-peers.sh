#!/usr/bin/env bash
# Installs what the benchmark's peer servers need on Debian 12, and only what
# is missing (safe to run again). Run as root (or with sudo available).
#   - nginx + libnginx-mod-nchan (Debian packages) for bench/peers/nchan
#   - nodejs + npm, then `npm ci` in bench/peers/node-ws for the ws package
#   - redis-server, shared by the replicas of notify-gateway and of nchan in
#     the replica benchmarks (bench/compare.sh's *-redis systems, bench/scale.sh)
#   - gnuplot-nox, for the charts (bench/charts.sh, SVG)
# The epoll-ceiling peer needs only g++ and libssl-dev, which
# scripts/install-deps.sh already installs for the gateway itself.
#
# Installing nginx must not leave a system nginx running on port 80: a
# policy-rc.d forbids service starts during the install, and any nginx
# service the package set up is stopped and disabled afterwards.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
# Debian 12's "nginx" package is the server itself (nginx-light is only a
# metapackage on top of it); libnginx-mod-nchan depends on its module ABI.
for p in nginx libnginx-mod-nchan redis-server gnuplot-nox; do
  installed "$p" || missing+=("$p")
done
command -v node >/dev/null || missing+=(nodejs)
# npm may come with nodejs (nodesource) or as its own package (Debian).
command -v npm >/dev/null || missing+=(npm)

if ((${#missing[@]} > 0)); then
  echo "install-peers: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  policy=/usr/sbin/policy-rc.d
  added_policy=0
  if [[ ! -e $policy ]]; then
    # 101 = "action forbidden": the packages' postinst won't start services.
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    added_policy=1
  fi
  remove_policy() { if [[ $added_policy == 1 ]]; then $SUDO rm -f "$policy"; fi; }
  trap remove_policy EXIT
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-peers: packages already installed"
fi

# No system nginx on port 80, whatever started it (systemd or sysvinit).
if installed nginx; then
  if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    $SUDO systemctl disable --now nginx.service >/dev/null 2>&1 || true
  else
    if [[ -x /etc/init.d/nginx ]]; then
      $SUDO /etc/init.d/nginx stop >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null; then
      $SUDO update-rc.d nginx disable >/dev/null 2>&1 || true
    fi
  fi
fi

if [[ ! -f /usr/lib/nginx/modules/ngx_nchan_module.so ]]; then
  echo "install-peers: ngx_nchan_module.so not found under /usr/lib/nginx/modules" >&2
  exit 1
fi

if [[ ! -d $here/node-ws/node_modules ]]; then
  echo "install-peers: npm ci in bench/peers/node-ws"
  (cd "$here/node-ws" && npm ci --no-audit --no-fund)
fi
echo "install-peers: done"
