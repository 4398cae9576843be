#!/usr/bin/env bash
# Installs what is missing, builds notify-gateway and notifyctl (build/) and
# runs the gateway for local development: WebSocket + page on 127.0.0.1:8080,
# gRPC on 127.0.0.1:50051, metrics on 127.0.0.1:9100, and the development
# identity mode (--insecure-dev: the page picks a user id, no tokens), which
# the gateway warns about in its log and on the page. Extra arguments go to
# the binary (see --help); NOTIFY_BIND / NOTIFY_INSECURE_DEV override these
# defaults, e.g. NOTIFY_INSECURE_DEV=false scripts/run.sh --jwt-secret-file secret.
# From another shell: build/notifyctl notify --user alice --event like --data '{"post":42}'
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
export NOTIFY_BIND="${NOTIFY_BIND:-127.0.0.1}"
export NOTIFY_INSECURE_DEV="${NOTIFY_INSECURE_DEV:-true}"
exec build/notify-gateway "$@"
