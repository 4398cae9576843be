#!/usr/bin/env python3
"""Summarises bench/compare.sh results: one markdown table, figure x system.

    python3 bench/report.py results.jsonl [--ratios A/B,C/D]

Each cell is the median over runs with (min-max); the last columns give one
system's figure divided by another's: by default notify-gateway's by each
other system's, or the pairs --ratios names (e.g. gateway-redis-3/gateway).
A figure marked "lower is better" wins with a ratio below 1, the others
above 1.
"""
import argparse
import json
import statistics
from collections import defaultdict

SYSTEMS = ["gateway", "gateway-redis-2", "gateway-redis-3", "ceiling", "nchan", "nchan-redis", "node-ws"]


def step_at(report, rate):
    for s in report["steps"]:
        if abs(s["rate"] - rate) < 1e-9:
            return s
    return None


def best_passing(report):
    passing = [s for s in report["steps"] if s["passed"]]
    return max(passing, key=lambda s: s["rate"]) if passing else None


def figures_of(system, scenario, r):
    """(figure name, value, lower_is_better) extracted from one report."""
    c, srv = r["connections"], r["server"]
    out = []
    if scenario.startswith("idle-"):
        n = scenario.split("-")[1]
        out.append((f"idle {n}: connections open", c["open"], False))
        out.append((f"idle {n}: KiB per connection", srv["kib_per_connection"], True))
        out.append((f"idle {n}: handshakes/s", c["handshakes_per_second"], False))
        out.append((f"idle {n}: handshake p99 ms", c["handshake_ms"]["p99"], True))
        out.append((f"idle {n}: server CPU s to connect", srv["connect_cpu_seconds"], True))
    elif scenario == "storm-5k":
        out.append(("storm 5k: handshakes/s", c["handshakes_per_second"], False))
        out.append(("storm 5k: handshake p99 ms", c["handshake_ms"]["p99"], True))
        out.append(("storm 5k: failed connections", c["failed"], True))
    elif scenario.startswith("fanout-"):
        size = scenario.split("-")[1]
        at10 = step_at(r, 10)
        if at10:
            out.append((f"fan-out {size} B @10k x 10/s: CPU s per M deliveries",
                        at10["server_cpu_seconds_per_million"], True))
            out.append((f"fan-out {size} B @10k x 10/s: p99 ms", at10["latency_ms"]["p99"], True))
            out.append((f"fan-out {size} B @10k x 10/s: server CPU %", at10["server_cpu_percent"], True))
        best = best_passing(r)
        out.append((f"fan-out {size} B: max sustained deliveries/s", best["deliveries_per_second"] if best else 0, False))
    elif scenario.startswith("notify-"):
        batch = scenario.split("-")[-1]
        best = best_passing(r)
        if batch == "1":
            # The gateway publishes through unary Notify calls (notify-1) or
            # one NotifyStream per connection (notify-stream-1); a peer's one
            # way (an HTTP POST per notification) is compared with both.
            if not system.startswith("gateway"):
                vias = ["Notify calls", "NotifyStream"]
            else:
                vias = ["NotifyStream"] if scenario == "notify-stream-1" else ["Notify calls"]
            for via in vias:
                row = f"notify (gateway via {via})"
                out.append((f"{row}: max sustained Notify/s (p99 < 100 ms)",
                            best["published"] / best["seconds"] if best else 0, False))
                out.append((f"{row}: server CPU us per Notify at max",
                            best["server_cpu_us_per_publish"] if best else 0, True))
                at5k = step_at(r, 5000)
                if at5k:
                    out.append((f"{row}: server CPU us per Notify @5000/s", at5k["server_cpu_us_per_publish"], True))
                    out.append((f"{row}: p99 ms @5000/s", at5k["latency_ms"]["p99"], True))
        else:
            out.append((f"notify x{batch} users: max sustained deliveries/s",
                        best["deliveries_per_second"] if best else 0, False))
    return out


def main():
    parser = argparse.ArgumentParser(description="Summarises bench/compare.sh results as one markdown table.")
    parser.add_argument("results", help="results.jsonl written by bench/compare.sh")
    parser.add_argument("--ratios", default="", help="comma-separated A/B pairs of systems (default: gateway/each)")
    args = parser.parse_args()
    values = defaultdict(lambda: defaultdict(list))  # figure -> system -> [values]
    lower = {}
    order = []
    with open(args.results) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            row = json.loads(line)
            for name, value, low in figures_of(row["system"], row["scenario"], row["report"]):
                if name not in lower:
                    order.append(name)
                lower[name] = low
                values[name][row["system"]].append(value)
    systems = [s for s in SYSTEMS if any(s in values[n] for n in order)]
    if args.ratios:
        pairs = [tuple(p.split("/", 1)) for p in args.ratios.split(",")]
    else:
        pairs = [("gateway", s) for s in systems if s != "gateway"]

    def fmt(v):
        if v >= 1000:
            return f"{v:,.0f}"
        if v >= 100:
            return f"{v:.0f}"
        return f"{v:.2f}" if v < 10 else f"{v:.1f}"

    head = ["figure"] + systems + [f"{a} / {b}" for a, b in pairs]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name in order:
        cells = [name + (" (lower is better)" if lower[name] else "")]
        med = {}
        for s in systems:
            v = values[name].get(s)
            if not v:
                cells.append("n/a")
                continue
            med[s] = statistics.median(v)
            cells.append(fmt(med[s]) + (f" ({fmt(min(v))}-{fmt(max(v))})" if len(v) > 1 else ""))
        for a, b in pairs:
            if a in med and b in med and med[b]:
                cells.append(f"{med[a] / med[b]:.2f}")
            else:
                cells.append("n/a")
        print("| " + " | ".join(cells) + " |")
    runs = max((len(v) for n in order for v in values[n].values()), default=0)
    print(f"\nMedian of {runs} run(s) per cell, (min-max) when more than one.")


if __name__ == "__main__":
    main()
