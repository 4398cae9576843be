#!/usr/bin/env python3
"""Charts from bench/compare.sh results, drawn by gnuplot as SVG.

    python3 bench/charts.py results.jsonl OUTDIR [--systems a,b,c] [--prefix replicas-]

For every ladder scenario in the results (fanout-64, notify-1,
notify-stream-1, ...) one chart: end-to-end p99 latency against the offered
rate, one line per system (the median over runs at each rate), with the
100 ms pass line; a ringed point is a step that failed (p99 over 100 ms,
under 99.9 % delivered, or the publisher fell behind the rate). Writes OUTDIR/<prefix><scenario>.svg and prints the paths.
Needs gnuplot (Debian's gnuplot-nox).
"""
import argparse
import collections
import json
import os
import statistics
import subprocess
import tempfile

TITLES = {
    "fanout-64": ("Broadcast fan-out to 10,000 subscribers, 64 B", "broadcasts per second"),
    "fanout-1k": ("Broadcast fan-out to 10,000 subscribers, 1 KiB", "broadcasts per second"),
    "notify-1": ("Targeted Notify, one user each (unary calls / HTTP POST)", "notifications per second"),
    "notify-stream-1": ("Targeted Notify over NotifyStream", "notifications per second"),
    "notify-100": ("Notify to 100 users per call", "calls per second"),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results")
    parser.add_argument("outdir")
    parser.add_argument("--systems", default="", help="comma-separated, in legend order (default: all)")
    parser.add_argument("--prefix", default="", help="file name prefix")
    args = parser.parse_args()

    # scenario -> system -> rate -> [p99 ms]; and the steps that failed in a run
    p99 = collections.defaultdict(lambda: collections.defaultdict(lambda: collections.defaultdict(list)))
    failed = collections.defaultdict(lambda: collections.defaultdict(lambda: collections.defaultdict(int)))
    with open(args.results) as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            for step in row["report"].get("steps", []):
                if step["delivered"] == 0:
                    continue
                p99[row["scenario"]][row["system"]][step["rate"]].append(step["latency_ms"]["p99"])
                if not step["passed"]:
                    failed[row["scenario"]][row["system"]][step["rate"]] += 1
    wanted = [s for s in args.systems.split(",") if s]
    os.makedirs(args.outdir, exist_ok=True)
    for scenario, by_system in p99.items():
        systems = wanted or sorted(by_system)
        systems = [s for s in systems if s in by_system]
        if not systems:
            continue
        title, xlabel = TITLES.get(scenario, (scenario, "rate per second"))
        with tempfile.TemporaryDirectory() as tmp:
            plots, highest = [], 0.0
            for n, system in enumerate(systems, start=1):
                data = os.path.join(tmp, system + ".dat")
                fails = os.path.join(tmp, system + ".failed.dat")
                with open(data, "w") as d, open(fails, "w") as f:
                    for rate in sorted(by_system[system]):
                        runs = by_system[system][rate]
                        value = statistics.median(runs)
                        highest = max(highest, value)
                        d.write(f"{rate} {value}\n")
                        # Failed in most of the runs that reached this rate.
                        if failed[scenario][system][rate] * 2 > len(runs):
                            f.write(f"{rate} {value}\n")
                plots.append(f"'{data}' using 1:2 with linespoints lc {n} pt 7 ps 0.6 title '{system}'")
                if os.path.getsize(fails):
                    plots.append(f"'{fails}' using 1:2 with points lc {n} pt 6 ps 1.6 notitle")
            svg = os.path.join(args.outdir, f"{args.prefix}{scenario}.svg")
            script = "\n".join([
                "set terminal svg size 760,420 dynamic font 'sans,12' background rgb 'white'",
                f"set output '{svg}'",
                f"set title '{title}'",
                f"set xlabel '{xlabel}'",
                "set ylabel 'p99 latency (ms, log scale)'",
                "set logscale xy",
                f"set yrange [*:{max(1000.0, highest * 2)}]",
                "set grid",
                "set key top left",
                "set arrow from graph 0, first 100 to graph 1, first 100 nohead dashtype 2 lc rgb 'red'",
                "set label 'p99 limit 100 ms (ringed: a failed step)' at graph 0.99, first 130 right tc rgb 'red'",
                "plot " + ", ".join(plots),
            ])
            subprocess.run(["gnuplot"], input=script, text=True, check=True)
        print(svg)


if __name__ == "__main__":
    main()
