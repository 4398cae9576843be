#!/usr/bin/env python3
"""Writes deploy/grafana/notify-gateway.json, the Grafana dashboard of
notify-gateway, from the panel list below (the one place to edit it).

    deploy/grafana/make-dashboard.py           # rewrite the JSON
    deploy/grafana/make-dashboard.py --check   # exit 1 if it is out of date (CI)

Every query selects {namespace=~"$namespace", job=~"$job",
instance=~"$instance"} (namespace: the Kubernetes namespace the
ServiceMonitor's targets carry; empty outside Kubernetes, which "All"
matches) and uses
$__rate_interval, so it works with any Prometheus data source and scrape
interval; tests/deploy/monitoring_test.py runs each of them against a real
Prometheus scraping real gateways and requires data back.
"""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from generated import write_or_check  # noqa: E402  (deploy/generated.py)

OUT = pathlib.Path(__file__).resolve().parent / "notify-gateway.json"
DS = {"type": "prometheus", "uid": "${datasource}"}
S = 'namespace=~"$namespace", job=~"$job", instance=~"$instance"'
R = "$__rate_interval"
SERVER_ERRORS = "UNAVAILABLE|INTERNAL|UNKNOWN|DEADLINE_EXCEEDED|RESOURCE_EXHAUSTED|DATA_LOSS"
UNARY = "Notify|Broadcast|Disconnect|GetPresence"


def q(expr, legend=""):
    return (expr, legend)


def stat(title, description, queries, unit="none", text_mode="value"):
    return {"kind": "stat", "title": title, "description": description, "queries": queries, "unit": unit,
            "text_mode": text_mode}


def graph(title, description, queries, unit="none", width=8):
    return {"kind": "timeseries", "title": title, "description": description, "queries": queries, "unit": unit,
            "width": width}


def quantiles(metric, by="", extra=""):
    grouping = f"le, {by}" if by else "le"
    sel = f"{S}, {extra}" if extra else S
    suffix = f" {{{{{by}}}}}" if by else ""
    return [q(f"histogram_quantile({p}, sum by ({grouping}) (rate({metric}{{{sel}}}[{R}])))", f"p{int(p * 100)}{suffix}")
            for p in (0.5, 0.99)]


ROWS = [
    ("Overview", [
        stat("Replicas up", "Targets of the selected job that answered Prometheus' last scrape. Fewer than you run: a "
             "replica is down or unreachable (alert NotifyGatewayReplicaDown); look at `kubectl get pods`, the pod's "
             "events and its last log lines.", [q(f"sum(up{{{S}}})")]),
        stat("Connections open", "WebSocket connections open on all selected replicas. A sudden drop is clients being "
             "disconnected (a replica restarted, a network cut); a steady climb towards --max-connections times the "
             "replicas needs more replicas.", [q(f"sum(notify_connections_open{{{S}}})")]),
        stat("Connects / s", "WebSocket upgrades completed per second. A spike right after a drop in open connections is "
             "clients reconnecting; a high rate with flat open connections is clients that connect and leave (check "
             "their reconnect logic and the handshake failures).",
             [q(f"sum(rate(notify_connections_accepted_total{{{S}}}[{R}]))")], unit="ops"),
        stat("Uptime (youngest replica)", "Time since the most recently started replica started. If it keeps resetting, "
             "a replica is crash-looping or being OOM-killed: see `kubectl describe pod` (Last State) and its log.",
             [q(f"min(time() - process_start_time_seconds{{{S}}})")], unit="s"),
        stat("Build version", "The versions running (notify_build_info), with how many replicas run each. Two versions "
             "outside a rollout mean a stuck rollout (`kubectl rollout status deployment/notify-gateway`).",
             [q(f"count by (version) (notify_build_info{{{S}}})", "{{version}}")], text_mode="value_and_name"),
        stat("Handshake failures / s", "Requests on the WebSocket port refused before a connection was established, all "
             "reasons; the panel below splits them. Compare with Connects / s: a high share is alert "
             "NotifyGatewayHandshakeFailureRatioHigh.", [q(f"sum(rate(notify_handshake_failures_total{{{S}}}[{R}]))")],
             unit="ops"),
        graph("Connections open per replica", "Open WebSocket connections of each replica. Replicas far apart after a "
              "while: the load balancer does not spread new connections evenly, or one replica was restarted and "
              "has not filled up again yet (clients stay where they are until they reconnect).",
              [q(f"sum by (instance) (notify_connections_open{{{S}}})", "{{instance}}")]),
        graph("Connects per second per replica", "WebSocket upgrades completed per second on each replica. One replica "
              "taking all new clients while the others take none points at the load balancer or at the others "
              "failing /readyz.", [q(f"sum by (instance) (rate(notify_connections_accepted_total{{{S}}}[{R}]))",
                                     "{{instance}}")], unit="ops"),
        graph("Handshake failures by reason", "Refused upgrades and bad HTTP requests per second, by reason "
              "(docs/metrics.md lists them): unauthorized = bad tokens (see Client token refusals), forbidden_origin = "
              "a web app origin missing from --allowed-origins, connection_limit / ip_connection_limit = limits "
              "reached, shutting_down = a drain in progress.",
              [q(f"sum by (reason) (rate(notify_handshake_failures_total{{{S}}}[{R}]))", "{{reason}}")], unit="ops"),
    ]),
    ("Traffic", [
        graph("Notify and Broadcast accepted", "Valid Notify requests (unary or on a NotifyStream) and Broadcast "
              "requests accepted per second on the selected replicas, whichever replica then delivers them. A drop "
              "to zero while backends are busy: backends cannot reach the admin API (gRPC errors, admin key "
              "refusals, NetworkPolicy).",
              [q(f"sum(rate(notify_notifications_received_total{{{S}}}[{R}]))", "Notify"),
               q(f"sum(rate(notify_broadcasts_received_total{{{S}}}[{R}]))", "Broadcast")], unit="ops"),
        graph("NotifyStream results by code", "Requests answered on NotifyStream calls per second, by the status in "
              "their result. INVALID_ARGUMENT: a backend sends bad requests (its log has the message); UNAVAILABLE: "
              "requests read while the replica shut down, which the backend should retry.",
              [q(f"sum by (code) (rate(notify_notify_stream_requests_total{{{S}}}[{R}]))", "{{code}}")], unit="ops"),
        graph("Notifications delivered to clients", "Notification frames written to client sockets per second (one "
              "per recipient connection). Far below accepted notifications times the expected recipients: users "
              "are offline, or frames are dropped (see Back-pressure).",
              [q(f"sum(rate(notify_delivery_latency_seconds_count{{{S}}}[{R}]))", "delivered")], unit="ops"),
        graph("Frames written per replica", "All frames written to client sockets per second (notifications, welcome, "
              "replies, errors), per replica.",
              [q(f"sum by (instance) (rate(notify_frames_delivered_total{{{S}}}[{R}]))", "{{instance}}")], unit="ops"),
        graph("Bytes sent per replica", "Payload bytes written to clients per second, per replica (WebSocket "
              "framing excluded). Compare with the node's network capacity.",
              [q(f"sum by (instance) (rate(notify_bytes_sent_total{{{S}}}[{R}]))", "{{instance}}")], unit="Bps"),
        graph("Client messages by type", "Frames received from clients per second, by type. A rise of invalid is a "
              "client build sending malformed frames; message is upstream traffic for StreamClientMessages "
              "consumers.", [q(f"sum by (type) (rate(notify_client_messages_total{{{S}}}[{R}]))", "{{type}}")],
              unit="ops"),
        graph("StreamClientMessages consumers", "Open StreamClientMessages streams (backends consuming client "
              "messages). 0 while clients send messages: they get no_consumer; start or fix the consumer.",
              [q(f"sum(notify_client_stream_consumers{{{S}}})", "consumers")]),
        graph("Client messages forwarded and dropped", "Client messages handed to consumer streams per second, and "
              "those a lagging stream lost (its --client-stream-buffer was full). Any drop: the consumer is too "
              "slow; alert NotifyGatewayClientMessagesDropped.",
              [q(f"sum(rate(notify_client_messages_forwarded_total{{{S}}}[{R}]))", "forwarded"),
               q(f"sum(rate(notify_client_messages_dropped_total{{{S}}}[{R}]))", "dropped")], unit="ops"),
    ]),
    ("Latency", [
        graph("Delivery latency", "From a Notify/Broadcast accepted by the RPC to its frame written to each client's "
              "socket (p50, p99). A p99 rising with CPU: replicas are saturated, add replicas; rising alone: slow "
              "clients or Redis (see Broker publish latency). Alert NotifyGatewayDeliveryLatencyHigh.",
              quantiles("notify_delivery_latency_seconds_bucket"), unit="s", width=12),
        graph("gRPC latency by method", "Time from a unary admin call's arrival to its status (p50, p99) by method; "
              "streams are left out (their duration is their lifetime). Notify and Broadcast wait for Redis when "
              "replicas share one.",
              quantiles("notify_grpc_request_duration_seconds_bucket", "method",
                        'method!~"NotifyStream|StreamClientMessages"'), unit="s", width=12),
        graph("gRPC errors by method and code", "Admin calls per second that ended with a status other than OK. "
              "INVALID_ARGUMENT, PERMISSION_DENIED, UNAUTHENTICATED: backend mistakes or keys; UNAVAILABLE: Redis "
              "down or a shutdown; RESOURCE_EXHAUSTED: --max-inflight-requests reached.",
              [q(f'sum by (method, code) (rate(notify_grpc_requests_total{{{S}, code!="OK"}}[{R}]))',
                 "{{method}} {{code}}")], unit="ops", width=12),
        graph("gRPC server-side error ratio", "Share of unary admin calls that failed on the server's side "
              "(UNAVAILABLE, INTERNAL, UNKNOWN, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, DATA_LOSS). Above 5% for 10 "
              "minutes is alert NotifyGatewayGrpcErrorRatioHigh.",
              [q(f'(sum(rate(notify_grpc_requests_total{{{S}, method=~"{UNARY}", code=~"{SERVER_ERRORS}"}}[{R}])) '
                 f'or vector(0)) / sum(rate(notify_grpc_requests_total{{{S}, method=~"{UNARY}"}}[{R}]))',
                 "server errors")], unit="percentunit", width=12),
    ]),
    ("Back-pressure and protection", [
        graph("Send-queue bytes", "Payload bytes waiting in client send queues, per replica: memory held for slow "
              "clients. A climb that does not come down: many slow clients; it is bounded by "
              "--send-queue-max-bytes per connection.",
              [q(f"sum by (instance) (notify_send_queue_bytes{{{S}}})", "{{instance}}")], unit="bytes"),
        graph("Slow consumers closed and frames dropped", "Connections closed with 4008 because their send queue was "
              "full (policy close), and frames discarded from full queues (policy drop-oldest), per second. Either "
              "means clients miss notifications: too much traffic per client, or clients on bad networks.",
              [q(f"sum(rate(notify_slow_consumer_closes_total{{{S}}}[{R}]))", "slow-consumer closes"),
               q(f"sum(rate(notify_messages_dropped_total{{{S}}}[{R}]))", "frames dropped")], unit="ops"),
        graph("Resumes", "Streams per second that reconnecting clients resumed (every missed notification replayed) "
              "and that they could not (resume_failed: history too short, lost, or off; the client reloads). A "
              "steady failure rate: --history-size or --history-ttl too small for how long clients stay away; a burst "
              "after a restart without Redis is expected (history lived in the process).",
              [q(f"sum(rate(notify_streams_resumed_total{{{S}}}[{R}]))", "resumed"),
               q(f"sum(rate(notify_streams_resume_failed_total{{{S}}}[{R}]))", "resume failed")], unit="ops"),
        graph("Limit rejections by limit", "Requests, connections and frames refused by a configured limit, per "
              "second (docs/metrics.md maps each to its flag). connections_per_ip behind a proxy: set "
              "--trusted-proxies.",
              [q(f"sum by (limit) (rate(notify_limit_rejections_total{{{S}}}[{R}]))", "{{limit}}")], unit="ops"),
        graph("Connections against the limit", "Open connections of each replica as a share of its "
              "--max-connections. At 100% new clients get 503; alert NotifyGatewayConnectionLimitNear at 85%. Empty "
              "when the limit is 0 (unlimited).",
              [q(f"max by (instance) (notify_connections_open{{{S}}} / (notify_connections_max{{{S}}} > 0))",
                 "{{instance}}")], unit="percentunit"),
        graph("Client token refusals by reason", "Upgrades and refreshes refused for their token, per second, by "
              "reason. expired: clients that don't refresh, or clock skew; bad_signature / unknown_key: a key "
              "rotation out of sync, or forged tokens. Alert NotifyGatewayAuthFailureSurge.",
              [q(f"sum by (reason) (rate(notify_auth_failures_total{{{S}}}[{R}]))", "{{reason}}")], unit="ops"),
        graph("Admin API key refusals by reason", "Admin calls refused by API key authentication, per second: "
              "missing_key, invalid_key (a retired or wrong key), forbidden_scope (the key lacks the method's "
              "scope). Alert NotifyGatewayAdminAuthFailures.",
              [q(f"sum by (reason) (rate(notify_admin_auth_failures_total{{{S}}}[{R}]))", "{{reason}}")], unit="ops"),
    ]),
    ("Broker (Redis)", [
        graph("Broker up per shard", "1 while a replica's connections to a Redis shard are ready. 0: calls that need "
              "the shard answer UNAVAILABLE; alert NotifyGatewayBrokerDown. Empty without --redis-url.",
              [q(f"min by (instance, shard) (notify_broker_up{{{S}}})", "{{instance}} shard {{shard}}")]),
        graph("Broker reconnects", "Connections to Redis lost after being ready, per replica and shard, in the rate "
              "window. A steady rise is a flapping Redis or network (alert NotifyGatewayBrokerReconnectStorm).",
              [q(f"sum by (instance, shard) (increase(notify_broker_reconnects_total{{{S}}}[{R}]))",
                 "{{instance}} shard {{shard}}")]),
        graph("Broker publish latency", "From handing a publication to the broker to Redis' answer (p50, p99). "
              "Rising: Redis is busy or far away; it adds to Notify's latency.",
              quantiles("notify_broker_publish_seconds_bucket"), unit="s"),
        graph("Broker errors", "Redis operations that failed per second by operation, pub/sub connections rebuilt by "
              "the probe, and malformed messages dropped. Probe failures: a subscription went silent (messages were "
              "lost meanwhile); malformed: something else publishes on notify:* channels.",
              [q(f"sum by (op) (rate(notify_broker_errors_total{{{S}}}[{R}]))", "{{op}} errors"),
               q(f"sum(rate(notify_broker_probe_failures_total{{{S}}}[{R}]))", "probe failures"),
               q(f"sum(rate(notify_broker_malformed_messages_total{{{S}}}[{R}]))", "malformed")], unit="ops"),
        graph("Redis channel subscriptions", "Redis channels each replica is subscribed to: one per user and topic "
              "with a local subscriber, plus notify:all and notify:upstream. It follows the connections; if it "
              "grows while connections don't, report a bug.",
              [q(f"sum by (instance) (notify_broker_subscriptions{{{S}}})", "{{instance}}")]),
        graph("Broker messages", "Messages published to Redis (one per addressed user or topic channel) and received "
              "from it, per second.",
              [q(f"sum(rate(notify_broker_messages_published_total{{{S}}}[{R}]))", "published"),
               q(f"sum(rate(notify_broker_messages_received_total{{{S}}}[{R}]))", "received")], unit="ops"),
    ]),
    ("Process", [
        graph("CPU", "CPU seconds per second each replica uses (1 = one core). Near the pod's CPU limit: latency "
              "rises; the HorizontalPodAutoscaler adds replicas at 70% of the request.",
              [q(f"sum by (instance) (rate(process_cpu_seconds_total{{{S}}}[{R}]))", "{{instance}}")]),
        graph("Resident memory per connection", "Resident memory of each replica divided by its open connections "
              "(a few KiB when idle). Rising with send-queue bytes: slow clients hold memory. Compare the total "
              "with the pod's memory limit.",
              [q(f"sum by (instance) (process_resident_memory_bytes{{{S}}}) / "
                 f"clamp_min(sum by (instance) (notify_connections_open{{{S}}}), 1)", "{{instance}}")], unit="bytes"),
        graph("Open files against the limit", "Open file descriptors of each replica as a share of its limit (about "
              "one per connection). At 100% accepting fails (`accept failed` in the log); alert "
              "NotifyGatewayFileDescriptorsNearLimit at 80%.",
              [q(f"max by (instance) (process_open_fds{{{S}}} / process_max_fds{{{S}}})", "{{instance}}")],
              unit="percentunit"),
    ]),
]


def panel_json(p, pid, x, y, w, h):
    targets = [{"datasource": DS, "refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend or "__auto",
                "range": True, "instant": False} for i, (expr, legend) in enumerate(p["queries"])]
    out = {"id": pid, "type": p["kind"], "title": p["title"], "description": p["description"], "datasource": DS,
           "gridPos": {"h": h, "w": w, "x": x, "y": y}, "targets": targets,
           "fieldConfig": {"defaults": {"unit": p["unit"]}, "overrides": []}}
    if p["kind"] == "stat":
        out["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                          "colorMode": "value", "graphMode": "area", "justifyMode": "auto",
                          "textMode": p["text_mode"], "orientation": "auto"}
    else:
        out["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                                                    "showPoints": "never", "spanNulls": False}
        out["options"] = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                          "tooltip": {"mode": "multi", "sort": "desc"}}
    return out


def dashboard():
    panels, pid, y = [], 1, 0
    for title, items in ROWS:
        panels.append({"id": pid, "type": "row", "title": title, "collapsed": False, "datasource": DS,
                       "description": f"{title} of the selected replicas.", "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                       "panels": []})
        pid, y = pid + 1, y + 1
        x, row_h = 0, 0
        for p in items:
            w, h = (4, 4) if p["kind"] == "stat" else (p["width"], 8)
            if x + w > 24:
                x, y = 0, y + row_h
                row_h = 0
            panels.append(panel_json(p, pid, x, y, w, h))
            pid, x, row_h = pid + 1, x + w, max(row_h, h)
        y += row_h
    var_query = lambda name, query: {  # noqa: E731
        "name": name, "label": name, "type": "query", "datasource": DS, "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"}, "refresh": 2, "sort": 1, "hide": 0,
        "current": {}, "options": [], "regex": ""}
    job = var_query("job", "label_values(notify_build_info, job)")
    job.update({"includeAll": False, "multi": False})
    namespace = var_query("namespace", 'label_values(notify_build_info{job=~"$job"}, namespace)')
    namespace.update({"includeAll": True, "multi": True, "allValue": ".*"})
    instance = var_query("instance", 'label_values(notify_build_info{job=~"$job", namespace=~"$namespace"}, instance)')
    instance.update({"includeAll": True, "multi": True, "allValue": ".+"})
    return {
        "__requires": [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.4.0"},
                       {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
                       {"type": "panel", "id": "stat", "name": "Stat", "version": ""},
                       {"type": "panel", "id": "timeseries", "name": "Time series", "version": ""}],
        "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                                  "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                                  "name": "Annotations & Alerts", "type": "dashboard"}]},
        "description": "notify-gateway: connections, traffic, latency, back-pressure, the Redis broker and the "
                       "process, read top to bottom. Each panel's description says what it means and what to do.",
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [],
        "panels": panels,
        "refresh": "30s",
        "schemaVersion": 39,
        "tags": ["notify-gateway"],
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0, "includeAll": False, "multi": False, "options": [], "refresh": 1,
             "regex": ""},
            job, namespace, instance]},
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": "notify-gateway",
        "uid": "notify-gateway",
        "version": 1,
        "weekStart": "",
    }


def main() -> int:
    text = json.dumps(dashboard(), indent=2) + "\n"
    return write_or_check(OUT, text, pathlib.Path(__file__).name, __doc__)


if __name__ == "__main__":
    sys.exit(main())
