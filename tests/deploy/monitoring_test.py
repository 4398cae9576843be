#!/usr/bin/env python3
"""The monitoring kit against the real thing (ctest deploy_monitoring).

1. Static: the Grafana dashboard is what deploy/grafana/make-dashboard.py
   writes, and is well formed (unique ids, a title, a description and the
   ${datasource} data source on every panel, panels that don't overlap, the
   datasource/job/instance variables, no hard-coded data source uid); the
   rules pass `promtool check rules` and `promtool test rules`, every alert
   has a unit test that makes it fire and a section in docs/runbook.md.
2. Live: a real redis-server, three real gateways sharing it, and Debian's
   prometheus scraping them every second with the rules file loaded. Real
   traffic: WebSocket clients with tokens on every replica, a refused token,
   client messages with a StreamClientMessages consumer, Notify / Broadcast /
   NotifyStream / GetPresence through notifyctl, a request over a limit, a
   wrong API key, and a slow consumer closed with 4008. Then every panel
   query of the dashboard, with the dashboard's variables substituted, runs
   through Prometheus' HTTP API and must succeed and return data (a finite
   value); the variables' own queries must list the job and the replicas;
   every rule must evaluate without error; the prometheus-adapter rule must
   give each pod its connection count.
3. Alerts for real: NotifyGatewayAdminAuthFailures fires from the refused
   admin call; with one gateway killed (SIGKILL), NotifyGatewayReplicaDown
   goes pending for that replica with the rules file as shipped, and firing
   once its `for:` is shortened (the only change) and Prometheus reloaded.

With NOTIFY_MONITORING_DATA=DIR the test also sends 150 s of traffic that
rises and falls (clients arriving and leaving, answering pings) before the
kill, and writes every panel's Prometheus data over those 150 s to
DIR/panels.json, from which deploy/grafana/preview.py draws
docs/dashboard-preview.png.

Usage: monitoring_test.py --root REPO --gateway BIN --notifyctl BIN
       [--prometheus BIN] [--promtool BIN] [--redis-server BIN]
Standard library only; every process is started here, on free loopback
ports, and ended by PID.
"""
import argparse
import base64
import hashlib
import hmac
import json
import math
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

JOB = "notify-gateway"
RATE_INTERVAL = "5m"  # wider than the whole run: every query sees all of its traffic
started = []  # (name, Popen)
failures = []


def log(msg):
    print(msg, flush=True)


def fail(msg):
    failures.append(msg)
    print(f"FAIL: {msg}", flush=True)


def fatal(msg):
    fail(msg)
    raise SystemExit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(name, argv, logfile, **kw):
    out = open(logfile, "wb")
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kw)
    started.append((name, p))
    return p


def stop_all():
    for name, p in reversed(started):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for name, p in started:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_for(what, predicate, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(interval)
    fatal(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


# ---------------------------------------------------------------- static checks

def check_dashboard(root, dashboard):
    gen = subprocess.run([sys.executable, str(root / "deploy/grafana/make-dashboard.py"), "--check"],
                         capture_output=True, text=True)
    if gen.returncode != 0:
        fail(f"deploy/grafana/notify-gateway.json is not what make-dashboard.py writes: {gen.stderr.strip()}")
    text = json.dumps(dashboard)
    if re.search(r'"uid":\s*"(?!\$\{datasource\}|-- Grafana --|notify-gateway")', text):
        fail("a data source uid other than ${datasource} is hard-coded")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    for name in ("datasource", "job", "namespace", "instance"):
        if name not in variables:
            fail(f"no ${name} variable")
    if variables.get("datasource", {}).get("type") != "datasource" or variables["datasource"].get("query") != "prometheus":
        fail("the datasource variable is not a Prometheus data source picker")
    if not isinstance(dashboard.get("schemaVersion"), int) or dashboard["schemaVersion"] < 36:
        fail(f"schemaVersion {dashboard.get('schemaVersion')} is older than current Grafana's")
    ids, cells = set(), {}
    panels = dashboard["panels"]
    for p in panels:
        where = f"panel {p.get('id')} {p.get('title')!r}"
        if p.get("id") in ids:
            fail(f"{where}: duplicate id")
        ids.add(p.get("id"))
        for key in ("title", "description"):
            if not isinstance(p.get(key), str) or len(p[key].strip()) < 3:
                fail(f"{where}: no {key}")
        if p.get("datasource") != {"type": "prometheus", "uid": "${datasource}"}:
            fail(f"{where}: data source is not ${{datasource}}: {p.get('datasource')}")
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in ("x", "y", "w", "h")) or g["x"] < 0 or g["x"] + g["w"] > 24:
            fail(f"{where}: bad gridPos {g}")
            continue
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    fail(f"{where}: overlaps panel {cells[(x, y)]}")
                    break
                cells[(x, y)] = p["id"]
            else:
                continue
            break
        if p["type"] != "row":
            if not p.get("targets"):
                fail(f"{where}: no query")
            for t in p.get("targets", []):
                if t.get("datasource") != p.get("datasource") or not t.get("expr"):
                    fail(f"{where}: target {t.get('refId')} has no expression or another data source")
    graphs = [p for p in panels if p["type"] != "row"]
    log(f"ok: dashboard structure ({len(graphs)} panels in {len(panels) - len(graphs)} rows)")
    return graphs


def check_rules(root, promtool):
    rules = root / "deploy/prometheus/notify-gateway.rules.yml"
    for argv in ([promtool, "check", "rules", str(rules)],
                 [promtool, "test", "rules", str(root / "deploy/prometheus/tests.yml")]):
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"{' '.join(argv[1:3])} failed:\n{r.stdout}{r.stderr}")
        else:
            log(f"ok: promtool {' '.join(argv[1:3])}")
    alerts = re.findall(r"^\s+- alert: (\w+)$", rules.read_text(), re.M)
    tests = (root / "deploy/prometheus/tests.yml").read_text()
    runbook = (root / "docs/runbook.md").read_text()
    for a in alerts:
        # a test block that expects it to fire: its alertname followed by exp_labels
        if not re.search(rf"alertname: {a}\n\s+exp_alerts:\n\s+- exp_labels:", tests):
            fail(f"alert {a} has no promtool test in which it fires")
        if not re.search(rf"^## {a}$", runbook, re.M):
            fail(f"alert {a} has no section '## {a}' in docs/runbook.md")
    log(f"ok: {len(alerts)} alerts, each with a firing test and a runbook section")
    return alerts


# ---------------------------------------------------------------- WebSocket client (stdlib)

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(secret, user, valid=True):
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"sub": user, "exp": int(time.time()) + 3600}).encode())
    key = secret if valid else secret[::-1]
    sig = b64url(hmac.new(key, f"{header}.{body}".encode(), hashlib.sha256).digest())
    return f"{header}.{body}.{sig}"


class Ws:
    def __init__(self, port, bearer=None, rcvbuf=None):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        auth = f"Authorization: Bearer {bearer}\r\n" if bearer else ""
        self.sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           f"{auth}\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8))[0]
        return b0 & 0x0F, self._read(n)

    def next_json(self, type_):
        while True:
            op, data = self.recv()
            if op == 1:
                msg = json.loads(data)
                if msg.get("type") == type_:
                    return msg
                if msg.get("type") == "error" and type_ != "error":
                    raise RuntimeError(f"waiting for {type_}, got {msg}")
            elif op == 8:
                raise EOFError(f"closed: {data[:2].hex()}")

    def send(self, text, opcode=1):
        data = text.encode()
        mask = os.urandom(4)
        head = bytes([0x80 | opcode])
        if len(data) < 126:
            head += bytes([0x80 | len(data)])
        else:
            head += bytes([0x80 | 126]) + struct.pack("!H", len(data))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------- Prometheus API

class Prometheus:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path, **params):
        url = f"{self.base}{path}?{urllib.parse.urlencode(params, doseq=True)}"
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise RuntimeError(f"{path}: {body}")
        return body["data"]

    def query(self, expr, at=None):
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        try:
            return self.get("/api/v1/query", **params)["result"]
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{e.code}: {e.read().decode(errors='replace')}") from None

    def value(self, expr):
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def alerts(self, name):
        return [a for a in self.get("/api/v1/alerts")["alerts"] if a["labels"].get("alertname") == name]


def finite(result):
    return [s for s in result if math.isfinite(float(s["value"][1]))]


def substitute(expr, instance=".+", namespace=".*"):
    return (expr.replace("$job", JOB).replace("$namespace", namespace).replace("$instance", instance)
            .replace("$__rate_interval", RATE_INTERVAL))


# ---------------------------------------------------------------- the run

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--notifyctl", required=True)
    ap.add_argument("--prometheus", default=shutil.which("prometheus"))
    ap.add_argument("--promtool", default=shutil.which("promtool"))
    ap.add_argument("--redis-server", default=shutil.which("redis-server"))
    args = ap.parse_args()
    import pathlib
    root = pathlib.Path(args.root)
    for name in ("prometheus", "promtool", "redis_server"):
        if not getattr(args, name):
            fatal(f"no {name.replace('_', '-')} (scripts/install-deps.sh --test installs prometheus and redis-server)")

    dashboard = json.loads((root / "deploy/grafana/notify-gateway.json").read_text())
    panels = check_dashboard(root, dashboard)
    check_rules(root, args.promtool)

    work = pathlib.Path(tempfile.mkdtemp(prefix="notify-monitoring-"))
    try:
        run(args, root, work, panels)
    finally:
        stop_all()
        if failures:
            for f in sorted(work.glob("*.log")):
                tail = f.read_text(errors="replace").splitlines()[-15:]
                print(f"--- {f.name} (last lines)\n" + "\n".join(tail))
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"FAIL: {len(failures)} finding(s)")
        return 1
    log("ok: the dashboard, the rules and the alerts work against a real Prometheus")
    return 0


def run(args, root, work, panels):
    t0 = time.time()
    secret = os.urandom(24).hex().encode()  # 48 bytes
    (work / "jwt-secret").write_bytes(secret)
    api_key = "monitoring-test-" + os.urandom(8).hex()
    (work / "api-keys").write_text(f"{api_key}\n")
    (work / "wrong-key").write_text("not-a-configured-key-at-all\n")

    redis_port = free_port()
    start("redis", [args.redis_server, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", str(work)], work / "redis.log")

    gateways = []
    for i in range(3):
        logfile = work / f"gateway-{i}.log"
        p = start(f"gateway-{i}", [args.gateway, "--bind", "127.0.0.1", "--ws-port", "0", "--grpc-port", "0",
                                   "--metrics-port", "0", "--threads", "1", "--log-format", "json",
                                   "--jwt-secret-file", str(work / "jwt-secret"),
                                   "--admin-api-keys-file", str(work / "api-keys"),
                                   "--redis-url", f"redis://127.0.0.1:{redis_port}",
                                   "--max-ids-per-request", "4", "--max-payload-bytes", "4096",
                                   "--send-queue-max-bytes", "8192"], logfile)

        def listening(logfile=logfile, p=p):
            if p.poll() is not None:
                fatal(f"{logfile.name}: the gateway exited with {p.returncode}")
            for line in logfile.read_text(errors="replace").splitlines():
                if '"listening"' in line:
                    return json.loads(line)
            return None
        info = wait_for(f"gateway {i} to listen", listening, 15)
        gateways.append({"proc": p, "ws": int(info["ws_port"]), "grpc": int(info["grpc_port"]),
                         "metrics": int(info["metrics_port"]), "pod": f"gw-{i}"})
    wait_for("every gateway's broker up", lambda: all(
        re.search(rb"^notify_broker_up\{[^}]*\} 1", urllib.request.urlopen(
            f"http://127.0.0.1:{g['metrics']}/metrics", timeout=5).read(), re.M) for g in gateways), 15)
    log(f"ok: redis-server and 3 gateways started ({time.time() - t0:.1f} s)")

    rules_copy = work / "rules.yml"
    shipped_rules = (root / "deploy/prometheus/notify-gateway.rules.yml").read_text()
    rules_copy.write_text(shipped_rules)
    prom_port = free_port()
    targets = "\n".join(
        f"      - targets: ['127.0.0.1:{g['metrics']}']\n        labels: {{namespace: test, pod: {g['pod']}}}"
        for g in gateways)
    (work / "prometheus.yml").write_text(f"""global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files:
  - {rules_copy}
scrape_configs:
  - job_name: {JOB}
    static_configs:
{targets}
""")
    prom = start("prometheus", [args.prometheus, f"--config.file={work / 'prometheus.yml'}",
                                f"--storage.tsdb.path={work / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}",
                                "--log.level=warn"], work / "prometheus.log")
    api = Prometheus(prom_port)
    wait_for("Prometheus to scrape the 3 gateways", lambda: api.value(f'sum(up{{job="{JOB}"}})') == 3, 30)
    log("ok: Prometheus scrapes the 3 gateways")

    # ---- traffic
    def notifyctl(g, *argv, key="api-keys", stdin=None, check=True):
        r = subprocess.run([args.notifyctl, "--server", f"127.0.0.1:{g['grpc']}", "--api-key-file", str(work / key),
                            *argv], input=stdin, capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            fatal(f"notifyctl {' '.join(argv[:1])} exited {r.returncode}: {r.stderr.strip()}")
        return r

    consumer = start("notifyctl-tail", [args.notifyctl, "--server", f"127.0.0.1:{gateways[0]['grpc']}",
                                        "--api-key-file", str(work / "api-keys"), "tail"], work / "tail.log")
    wait_for("the StreamClientMessages consumer", lambda: consumer.poll() is None and b"notify_client_stream_consumers 1"
             in urllib.request.urlopen(f"http://127.0.0.1:{gateways[0]['metrics']}/metrics", timeout=5).read(), 10)

    clients = []
    for i, g in enumerate(gateways):
        for j in range(3):
            ws = Ws(g["ws"], token(secret, f"u{i}{j}"))
            if ws.status != 101:
                fatal(f"a client with a valid token got HTTP {ws.status} from gateway {i}")
            ws.next_json("welcome")
            clients.append(ws)
    for ws in clients:
        ws.send('{"type":"ping","id":1}')
        ws.next_json("pong")
    # Client messages from a replica of each kind: the consumer's replica and
    # the others (through Redis). A replica learns of a consumer elsewhere
    # through Redis, so the first messages may be answered no_consumer.
    def acked(ws, k):
        ws.send(json.dumps({"type": "message", "id": f"m-{k}", "data": {"text": "hello"}}))
        while True:
            op, data = ws.recv()
            msg = json.loads(data) if op == 1 else {}
            if msg.get("type") == "ack":
                return True
            if msg.get("code") == "no_consumer":
                return False
    for k, ws in enumerate((clients[0], clients[3], clients[6])):
        wait_for(f"an ack for a client message on gateway {k}", lambda ws=ws, k=k: acked(ws, k), 10, interval=0.3)
    clients[0].send("not json")
    clients[0].next_json("error")
    refused = Ws(gateways[1]["ws"], token(secret, "mallory", valid=False))
    if refused.status != 401:
        fail(f"a forged token got HTTP {refused.status}, not 401")
    refused.close()
    wait_for("3 client messages at the consumer", lambda: (work / "tail.log").read_text().count("hello") >= 3, 10)

    for n in range(5):
        r = notifyctl(gateways[0], "notify", "--user", "u00,u10,u20", "--event", "like", "--data", json.dumps({"n": n}))
    for ws in (clients[0], clients[3], clients[6]):
        for _ in range(5):
            ws.next_json("notification")
    notifyctl(gateways[1], "broadcast", "--event", "news", "--data", '"hi"')
    for ws in clients:
        ws.next_json("notification")
    notifyctl(gateways[2], "presence", "--user", "u00,u11")
    over = notifyctl(gateways[0], "notify", "--user", "a,b,c,d,e", "--event", "x", check=False)
    if over.returncode != 67:
        fail(f"a Notify to 5 users over --max-ids-per-request 4: exit {over.returncode}, not 67 (INVALID_ARGUMENT)")
    wrong = notifyctl(gateways[1], "presence", "--user", "u00", key="wrong-key", check=False)
    if wrong.returncode == 0:
        fail("a wrong API key was accepted")
    lines = [json.dumps({"user_ids": [f"u{i}1"], "notification": {"event": "view", "data_json": "1"}})
             for i in range(3) for _ in range(20)]
    lines.append(json.dumps({"user_ids": ["u01"], "notification": {"event": "bad event!"}}))
    notifyctl(gateways[1], "stream", "--file", "-", stdin="\n".join(lines) + "\n", check=False)

    # A slow consumer: a client that stops reading, with a small receive
    # buffer, on a gateway whose send queues hold 8 KiB.
    slow = Ws(gateways[2]["ws"], token(secret, "slow"), rcvbuf=4096)
    slow.next_json("welcome")
    big = json.dumps("x" * 3000)
    burst = "\n".join(json.dumps({"user_ids": ["slow"], "notification": {"event": "big", "data_json": big}})
                      for _ in range(3000)) + "\n"

    def slow_closed():
        notifyctl(gateways[2], "stream", "--file", "-", stdin=burst, check=False)
        text = urllib.request.urlopen(f"http://127.0.0.1:{gateways[2]['metrics']}/metrics", timeout=5).read()
        return re.search(rb"^notify_slow_consumer_closes_total [1-9]", text, re.M)
    wait_for("the slow consumer to be closed with 4008", slow_closed, 40, interval=0.5)
    slow.close()
    t_traffic = time.time()
    log(f"ok: traffic sent ({t_traffic - t0:.1f} s)")

    # Prometheus has the end of it once it scraped twice more.
    expected = 5 + 60  # Notify calls + NotifyStream requests accepted by all gateways (+ the slow burst)
    wait_for("Prometheus to scrape the traffic", lambda: api.value(
        f'sum(notify_notifications_received_total{{job="{JOB}"}})') >= expected and api.value(
        f'sum(notify_slow_consumer_closes_total{{job="{JOB}"}})') >= 1, 15)
    time.sleep(2.5)

    # ---- every panel's query, with the variables substituted
    now = time.time()
    checked = 0
    for p in panels:
        for t in p["targets"]:
            expr = substitute(t["expr"])
            try:
                result = api.query(expr, at=now)
            except Exception as e:  # noqa: BLE001
                fail(f"panel {p['title']!r} {t['refId']}: query failed: {e}\n  {expr}")
                continue
            if not finite(result):
                fail(f"panel {p['title']!r} {t['refId']}: no data ({len(result)} series, none finite)\n  {expr}")
            checked += 1
    log(f"ok: {checked} queries of {len(panels)} panels return data")

    # The variables: job lists ours, namespace the one the targets carry,
    # instance the 3 replicas; picking one selects it alone.
    jobs = api.get("/api/v1/label/job/values", **{"match[]": "notify_build_info"})
    namespaces = api.get("/api/v1/label/namespace/values", **{"match[]": f'notify_build_info{{job=~"{JOB}"}}'})
    instances = api.get("/api/v1/label/instance/values",
                        **{"match[]": f'notify_build_info{{job=~"{JOB}", namespace=~"test"}}'})
    if JOB not in jobs or namespaces != ["test"] or len(instances) != 3:
        fail(f"variables: job values {jobs}, namespace values {namespaces}, instance values {instances}")
    one = f"127.0.0.1:{gateways[0]['metrics']}"
    sel = 'sum by (instance) (notify_connections_open{namespace=~"$namespace", job=~"$job", instance=~"$instance"})'
    per_instance = api.query(substitute(sel, instance=one, namespace="test"))
    if [s["metric"].get("instance") for s in per_instance] != [one]:
        fail(f"$instance={one} selects {per_instance}")
    if api.query(substitute(sel, namespace="elsewhere")):
        fail("$namespace=elsewhere still selects the test's replicas")
    log("ok: the job, namespace and instance variables list the job, its namespace and its 3 replicas, and select")

    # ---- the rules, evaluated by Prometheus
    groups = api.get("/api/v1/rules")["groups"]
    loaded = [r for g in groups for r in g["rules"]]
    bad = [f"{r.get('name')}: {r.get('lastError')}" for r in loaded if r.get("health") != "ok"]
    if len(loaded) != shipped_rules.count("- record:") + shipped_rules.count("- alert:") or bad:
        fail(f"rules: {len(loaded)} loaded, unhealthy: {bad}")
    for r in loaded:
        if r["type"] == "recording" and not finite(api.query(r["name"])):
            fail(f"recording rule {r['name']} has no data")
    log(f"ok: Prometheus evaluates all {len(loaded)} rules without error")

    # ---- the prometheus-adapter rule: each pod's connection count
    values = (root / "deploy/kubernetes/monitoring/prometheus-adapter-values.yaml").read_text()
    series_q = re.search(r"seriesQuery: '(.*)'", values).group(1)
    metrics_q = re.search(r"metricsQuery: '(.*)'", values).group(1)
    if len(api.get("/api/v1/series", **{"match[]": series_q})) != 3:
        fail(f"the adapter's seriesQuery {series_q} does not find the 3 pods")
    adapter = metrics_q.replace("<<.Series>>", "notify_connections_open").replace(
        "<<.LabelMatchers>>", 'namespace="test",pod=~"gw-0|gw-1|gw-2"').replace("<<.GroupBy>>", "pod")
    per_pod = {s["metric"]["pod"]: float(s["value"][1]) for s in api.query(adapter)}
    if per_pod != {"gw-0": 3.0, "gw-1": 3.0, "gw-2": 3.0}:
        fail(f"the adapter's metricsQuery gives {per_pod}, not 3 connections per pod")
    else:
        log(f"ok: the prometheus-adapter rule gives each pod its connections: {per_pod}")

    # ---- alerts, for real
    wait_for("NotifyGatewayAdminAuthFailures firing", lambda: any(
        a["state"] == "firing" for a in api.alerts("NotifyGatewayAdminAuthFailures")), 15)
    if api.alerts("NotifyGatewayReplicaDown"):
        fail(f"NotifyGatewayReplicaDown active with every replica up: {api.alerts('NotifyGatewayReplicaDown')}")
    log("ok: NotifyGatewayAdminAuthFailures fires from the refused admin call; no replica-down alert")

    if os.environ.get("NOTIFY_MONITORING_DATA"):
        t_preview = time.time()
        preview_traffic(gateways, clients, secret, notifyctl)
        dump_panels(api, panels, t_preview, time.time())

    victim = gateways[2]
    victim["proc"].kill()
    victim["proc"].wait()
    target = f"127.0.0.1:{victim['metrics']}"
    t_kill = time.time()

    def state_of_replica_down():
        return {a["labels"]["instance"]: a["state"] for a in api.alerts("NotifyGatewayReplicaDown")}
    wait_for("NotifyGatewayReplicaDown pending for the killed replica",
             lambda: state_of_replica_down().get(target) == "pending", 20)
    others = {k: v for k, v in state_of_replica_down().items() if k != target}
    if others:
        fail(f"NotifyGatewayReplicaDown also for live replicas: {others}")
    log(f"ok: NotifyGatewayReplicaDown pending {time.time() - t_kill:.1f} s after kill -9 of {target} (for: 2m as shipped)")

    shortened = re.sub(r"(- alert: NotifyGatewayReplicaDown\n(?:.*\n)*?\s+for: )2m", r"\g<1>5s", shipped_rules, count=1)
    if shortened == shipped_rules:
        fatal("could not shorten NotifyGatewayReplicaDown's for: in the copy")
    rules_copy.write_text(shortened)
    prom.send_signal(signal.SIGHUP)
    wait_for("NotifyGatewayReplicaDown firing once for: is 5s",
             lambda: state_of_replica_down().get(target) == "firing", 30)
    log(f"ok: NotifyGatewayReplicaDown firing {time.time() - t_kill:.1f} s after the kill (for: shortened to 5s)")

    for ws in clients:
        ws.close()


def preview_traffic(gateways, clients, secret, notifyctl, seconds=150):
    """Only for the preview (NOTIFY_MONITORING_DATA): a couple of minutes of
    traffic that rises and falls, with clients coming and going."""
    import random
    import select
    import threading
    rng = random.Random(7)
    stop = threading.Event()
    lock = threading.Lock()
    readers = list(clients)

    def drain():  # every client reads and answers pings, as a browser does
        while not stop.is_set():
            with lock:
                socks = {ws.sock: ws for ws in readers if ws.sock.fileno() >= 0}
            ready, _, _ = select.select(list(socks), [], [], 0.2) if socks else ([], [], [])
            for sock in ready:
                ws = socks[sock]
                try:
                    op, data = ws.recv()
                    if op == 9:
                        ws.send(data.decode(), opcode=10)
                except (OSError, EOFError, ValueError):
                    with lock:
                        if ws in readers:
                            readers.remove(ws)
    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    start_t = time.time()
    users = [f"u{i}{j}" for i in range(3) for j in range(3)]
    tick = 0
    while time.time() - start_t < seconds:
        phase = (time.time() - start_t) / seconds
        load = int(40 + 400 * (0.5 - 0.5 * math.cos(2 * math.pi * 2 * phase)))
        lines = "".join(json.dumps({"user_ids": [rng.choice(users)], "notification": {
            "event": "like", "data_json": json.dumps({"n": n})}}) + "\n" for n in range(load))
        notifyctl(rng.choice(gateways), "stream", "--file", "-", stdin=lines, check=False)
        if tick % 5 == 0:
            notifyctl(rng.choice(gateways), "broadcast", "--event", "news", "--data", '"hi"', check=False)
        if tick % 2 == 0 and phase < 0.7:  # clients arrive, then some leave
            g = rng.choice(gateways)
            ws = Ws(g["ws"], token(secret, f"visitor{tick}"))
            with lock:
                readers.append(ws)
        elif phase >= 0.7 and len(readers) > len(clients):
            with lock:
                readers.pop().close()
        if tick % 4 == 0:
            Ws(rng.choice(gateways)["ws"], token(secret, "mallory", valid=False)).close()
        tick += 1
        time.sleep(max(0.0, start_t + tick - time.time()))
    stop.set()
    thread.join()
    log(f"preview traffic: {seconds} s, {tick} ticks")


def dump_panels(api, panels, start_t, end_t):
    """For deploy/grafana/preview.py: every panel's series over the run."""
    out_dir = os.environ.get("NOTIFY_MONITORING_DATA")
    if not out_dir:
        return
    data = []
    for p in panels:
        series = []
        for t in p["targets"]:
            r = api.get("/api/v1/query_range", query=substitute(t["expr"]).replace(RATE_INTERVAL + "]", "15s]"),
                        start=f"{start_t:.0f}", end=f"{end_t:.0f}", step="1")
            for s in r["result"]:
                legend = re.sub(r"\{\{(\w+)\}\}", lambda m, s=s: s["metric"].get(m.group(1), ""),
                                t.get("legendFormat", "")).strip()
                series.append({"legend": legend if legend and legend != "__auto" else t["refId"],
                               "values": [[float(a), float(b)] for a, b in s["values"]]})
        data.append({"title": p["title"], "type": p["type"], "unit": p["fieldConfig"]["defaults"]["unit"],
                     "series": series})
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "panels.json"), "w") as f:
        json.dump({"start": start_t, "end": end_t, "panels": data}, f)
    log(f"wrote {out_dir}/panels.json")


if __name__ == "__main__":
    sys.exit(main())
