# Shell functions the benchmark scripts share; source it.
#   pids=(...)        processes this script started, stopped by stop_pids
#   busy PORT         something listens on 127.0.0.1:PORT
#   ensure_free PORT… exits with a message when one is in use
#   wait_port PORT [PID] [LOG]
#                     until 127.0.0.1:PORT listens; gives up after 10 s or
#                     when PID exits, showing the end of LOG
#   stop_pids         SIGTERM to every pid in $pids, last started first, and waits
pids=()

busy() { (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null; }

ensure_free() {
  local p
  for p in "$@"; do
    ! busy "$p" || { echo "port $p is in use (left from an earlier run?): stop what holds it first" >&2; exit 1; }
  done
}

wait_port() {
  local port=$1 pid=${2:-} log=${3:-}
  for _ in $(seq 100); do
    busy "$port" && return 0
    [[ -z $pid ]] || kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "nothing listens on port $port${log:+; see $log}" >&2
  [[ -z $log ]] || tail -20 "$log" >&2
  exit 1
}

stop_pids() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do wait "${pids[i]}" 2>/dev/null || true; done
  pids=()
}
