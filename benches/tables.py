#!/usr/bin/env python3
"""The README's bench and soak tables, printed from what `make bench` and `make soak` wrote to
target/bench/*.json: every figure in them comes from one run, stamped with its date, commit and
machine. Usage: python3 benches/tables.py (then paste over the README's tables)."""
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(name):
    path = os.path.join(ROOT, "target", "bench", f"{name}.json")
    with open(path) as f:
        return json.load(f)


def cell(value, fmt):
    return "—" if value is None else fmt.format(value)


def stamp(doc):
    return f"`{doc['command']}`, {doc['date']}, commit {doc['commit']}, {doc['cores']} cores"


def bench():
    doc = load("load")
    print(f"Latest full run: {stamp(doc)}.\n")
    print("| workload | requests | failed | req/s | p50 ms | p99 ms | max ms | upstream | RSS before/peak/after MB | notes |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in doc["rows"]:
        rss = " / ".join(cell(r[k], "{:.1f}") for k in ("rssBeforeMb", "rssPeakMb", "rssAfterMb"))
        print(
            f"| {r['workload']} | {r['requests']} | {cell(r['failures'], '{}')} | {cell(r['perSec'], '{:.0f}')} "
            f"| {cell(r['p50Ms'], '{:.2f}')} | {cell(r['p99Ms'], '{:.2f}')} | {cell(r['maxMs'], '{:.1f}')} "
            f"| {cell(r['upstreamRequests'], '{}')} | {rss} | {r['notes']} |"
        )
    broken = [b for r in doc["rows"] for b in r.get("broken", [])]
    if broken:
        print("\nPromises this run broke (`make bench` exits 1 on them):\n")
        for b in broken:
            print(f"- {b}")


def trend(doc):
    span = f"{doc['rssTrendSpanSecs']:.0f} s"
    if doc["rssTrendShape"] == "flat":
        # Flat is a bound in MB, never a slope: a rate beside "flat" would read as a ramp.
        return f"flat: within {doc['rssTrendToleranceMb']:.1f} MB over {span}"
    return f"{doc['rssTrendShape']}: {doc['rssTrendMbPerHour']:+.2f} MB/h over {span}"


def soak():
    doc = load("soak")
    print(f"\nLatest full run: {stamp(doc)}.\n")
    growth = (doc["rssEndMb"] - doc["rssBaselineMb"]) / doc["rssBaselineMb"] * 100
    rows = [
        ("seconds, clients", f"{doc['secs']}, {doc['concurrency']}"),
        ("requests served", f"{doc['requests']:,}"),
        ("relay faults injected", f"{doc['faultsInjected']:,}"),
        ("streams abandoned mid-body or stalled", f"{doc['streamsAbortedOrStalled']:,}"),
        ("RSS", f"{doc['rssStartMb']:.1f} MB at start, {doc['rssBaselineMb']:.1f} MB after warm-up, "
                f"{doc['rssPeakMb']:.1f} MB peak, {doc['rssEndMb']:.1f} MB at the end ({growth:+.1f}% over the baseline)"),
        ("RSS trend after warm-up", trend(doc)),
        ("open descriptors (the relay pool's and clients' connections apart)",
         f"{doc['fdsBaseline']} after warm-up, {doc['fdsEnd']} at the end"
         + (f"; then {doc['relayConnectionsEnd']} to the relay, {doc['clientConnectionsEnd']} from clients"
            if 'clientConnectionsEnd' in doc else "")),
        ("answers with an unexpected status", f"{doc['unexpectedStatuses']}"),
    ]
    print("| figure | value |\n| --- | --- |")
    for k, v in rows:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    for table, run in ((bench, "make bench"), (soak, "make soak")):
        try:
            table()
        except FileNotFoundError as missing:
            print(f"{missing.filename}: not there; run `{run}` first")
        print()
