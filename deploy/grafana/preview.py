#!/usr/bin/env python3
"""Draws a preview of the dashboard's main panels (a PNG) from the Prometheus
data the monitoring test collected, with gnuplot (Debian's gnuplot-nox): what
a reader sees in Grafana before installing it.

    NOTIFY_MONITORING_DATA=/tmp/mon ctest --test-dir build -R deploy_monitoring
    deploy/grafana/preview.py /tmp/mon/panels.json docs/dashboard-preview.png

With NOTIFY_MONITORING_DATA set, the test adds 150 s of traffic that rises and
falls, with clients arriving and leaving, before it kills a gateway; the data
is every panel's queries over those 150 s, evaluated every second with a 15 s
rate window.
"""
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile

MAIN = [
    "Connections open per replica",
    "Notify and Broadcast accepted",
    "Notifications delivered to clients",
    "Delivery latency",
    "gRPC latency by method",
    "Handshake failures by reason",
    "Slow consumers closed and frames dropped",
    "Broker messages",
    "Resident memory per connection",
]
# unit -> (scale, axis label)
UNITS = {"s": (1000, "ms"), "bytes": (1 / 1024, "KiB"), "Bps": (1 / 1024, "KiB/s"), "ops": (1, "per second"),
         "percentunit": (100, "%"), "none": (1, "")}
COLORS = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#705da0"]


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    if not shutil.which("gnuplot"):
        print("gnuplot is missing: apt-get install gnuplot-nox", file=sys.stderr)
        return 1
    data = json.loads(pathlib.Path(sys.argv[1]).read_text())
    panels = {p["title"]: p for p in data["panels"]}
    missing = [t for t in MAIN if t not in panels]
    if missing:
        print(f"no data for {missing}", file=sys.stderr)
        return 1
    t0 = data["start"]
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="dashboard-preview-"))
    script = [
        'set terminal pngcairo size 1500,1000 background "#111217" font "DejaVu Sans,9"',
        f'set output "{pathlib.Path(sys.argv[2]).resolve()}"',
        'set border lc rgb "#8e8e8e"', 'set tics textcolor rgb "#c7d0d9"', 'set grid lc rgb "#2c3235"',
        'set key top left textcolor rgb "#c7d0d9" font ",8" samplen 1.5 spacing 0.9',
        'set xlabel "seconds into the test" textcolor rgb "#8e8e8e"',
        'set multiplot layout 3,3 title "notify-gateway (preview from the monitoring test: 3 replicas sharing a Redis, '
        '150 s of rising and falling traffic, clients coming and going)" textcolor rgb "#c7d0d9" font ",12"',
    ]
    for n, title in enumerate(MAIN):
        p = panels[title]
        scale, label = UNITS.get(p["unit"], (1, ""))
        series = [s for s in p["series"] if any(v != 0 for _, v in s["values"] if v == v)] or p["series"][:1]
        plots = []
        for k, s in enumerate(series[:6]):
            f = tmp / f"{n}-{k}.dat"
            f.write_text("".join(f"{t - t0:.0f} {v * scale:.6g}\n" if v == v else "\n" for t, v in s["values"]))
            legend = s["legend"].replace("_", "\\\\_").replace('"', "'")
            plots.append(f'"{f}" using 1:2 with lines lw 1.5 lc rgb "{COLORS[k % len(COLORS)]}" title "{legend}"')
        script += [f'set title "{title}" textcolor rgb "#d8d9da" font ",10"', f'set ylabel "{label}" textcolor rgb "#8e8e8e"',
                   "set yrange [0:*]", "plot " + ", ".join(plots) if plots else "plot 0 notitle"]
    script.append("unset multiplot")
    r = subprocess.run(["gnuplot"], input="\n".join(script) + "\n", text=True, capture_output=True)
    shutil.rmtree(tmp, ignore_errors=True)
    if r.returncode != 0:
        print(r.stderr, file=sys.stderr)
        return 1
    print(f"wrote {sys.argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
