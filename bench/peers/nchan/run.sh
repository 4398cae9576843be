#!/usr/bin/env bash
# Starts the nchan peer (nginx + Debian's libnginx-mod-nchan, 2 worker
# processes) in the foreground on 127.0.0.1:<port>. `exec` makes the PID
# seen by `run.sh & echo $!` the nginx master; the workers are its children.
#   bench/peers/nchan/run.sh <port>
# Needs nginx and libnginx-mod-nchan (bench/peers/install-peers.sh).
#
# Everything nginx writes (nginx.conf, pid, error log, temp dirs) goes to
# ${NCHAN_WORKDIR:-/tmp/nchan-peer-<port>}, emptied at each start; nothing
# under /etc/nginx or /var is used.
#
# Channels: each subscriber socket is multiplexed onto two channels, "all"
# (POST /broadcast) and "u_<user>" (POST /notify?user=<user>). nchan sends a
# WebSocket subscriber each message's body as it was published (no message
# ids or metadata; those only come with the ws+meta.nchan subprotocol).
#
# NCHAN_WORKERS sets worker_processes (default 2).
# NCHAN_REDIS_URL=redis://127.0.0.1:6379 puts the channels in that Redis
# (an upstream with nchan_redis_server, nchan_redis_pass): several nginx instances pointed at one Redis then act as
# one, nchan's own way of scaling out.
set -euo pipefail
if [[ $# -ne 1 || ! $1 =~ ^[0-9]+$ ]]; then
  echo "usage: $0 <port>" >&2
  exit 2
fi
port=$1
bind=${BIND_ADDRESS:-127.0.0.1}
module=/usr/lib/nginx/modules/ngx_nchan_module.so
if ! command -v nginx >/dev/null || [[ ! -f $module ]]; then
  echo "nchan: nginx or $module is missing; run bench/peers/install-peers.sh" >&2
  exit 1
fi
work=${NCHAN_WORKDIR:-/tmp/nchan-peer-$port}
# Only ever empty a directory this script made (it holds our nginx.conf).
if [[ -d $work && -n $(ls -A "$work") && ! -f $work/nginx.conf ]]; then
  echo "nchan: $work exists and is not a previous nchan peer directory" >&2
  exit 1
fi
rm -rf "$work"
mkdir -p "$work"
chmod 755 "$work"  # the workers (user nobody when started as root) create temp dirs in it

# With Redis, each nchan location names the upstream (nchan_redis_pass).
redis_pass=""
[[ -z ${NCHAN_REDIS_URL:-} ]] || redis_pass=$'\n      nchan_redis_pass redis_shared;'

cat > "$work/nginx.conf" <<CONF
load_module $module;

worker_processes ${NCHAN_WORKERS:-2};
worker_rlimit_nofile 20000;
pid $work/nginx.pid;
error_log $work/error.log warn;

events {
  worker_connections 20000;
}

http {
  access_log off;
  default_type text/plain;
  client_body_temp_path $work/client_body;
  proxy_temp_path $work/proxy;
  fastcgi_temp_path $work/fastcgi;
  uwsgi_temp_path $work/uwsgi;
  scgi_temp_path $work/scgi;

  # Publishers hold one keep-alive connection (pipelined) for a whole run.
  keepalive_timeout 120s;
  keepalive_requests 1000000000;
  # Bodies up to 16 MiB, kept in memory rather than spooled to temp files.
  client_max_body_size 16m;
  client_body_buffer_size 1m;
  tcp_nodelay on;

  # Shared memory for channels, subscribers and messages (19,000+ sockets).
  nchan_shared_memory_size 256m;
  # Store nothing: the benchmark needs live delivery, not history. With a
  # buffer of 1, a new multiplexed subscriber was sometimes handed the "all"
  # channel's stored last message despite "first_message newest" (see
  # bench/peers/README.md); with 0, connected subscribers still get every
  # message and nothing is replayed.
  # NCHAN_BUFFER / NCHAN_TIMEOUT override them (bench/history.sh measures
  # what keeping messages costs Nchan).
  nchan_message_buffer_length ${NCHAN_BUFFER:-0};
  nchan_message_timeout ${NCHAN_TIMEOUT:-10s};
$(if [[ -n ${NCHAN_REDIS_URL:-} ]]; then
  printf '  upstream redis_shared {\n    nchan_redis_server %s;\n  }\n' "$NCHAN_REDIS_URL"
fi)

  server {
    listen $bind:$port backlog=4096;

    location = /ws {
      if (\$arg_user !~ "^[A-Za-z0-9_-]{1,64}\$") { return 400 "bad user\n"; }
      nchan_subscriber websocket;$redis_pass
      nchan_channel_id all u_\$arg_user;
      # A new subscriber waits for the next message (the default "oldest"
      # would replay what the channels still have buffered).
      nchan_subscriber_first_message newest;
    }
    location = /broadcast {
      nchan_publisher http;$redis_pass
      nchan_channel_id all;
    }
    location = /notify {
      if (\$arg_user !~ "^[A-Za-z0-9_-]{1,64}\$") { return 400 "bad user\n"; }
      nchan_publisher http;$redis_pass
      nchan_channel_id u_\$arg_user;
    }
    # Shared memory in use, among other figures (bench/inbox.sh reads it).
    location = /nchan_status {
      nchan_stub_status;
    }
    location / {
      return 404 "not found\n";
    }
  }
}
CONF

# 19,000+ sockets: raise the soft limit to 20000 (the hard limit here); the
# workers get worker_rlimit_nofile from the config.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
exec nginx -p "$work" -e "$work/error.log" -c "$work/nginx.conf" -g 'daemon off;'
