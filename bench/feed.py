#!/usr/bin/env python3
"""The change feed, measured against live simulators.

Starts `switchboard demo` (release build) with its simulated world moving every LIVE_MS, opens
SUBSCRIBERS Server-Sent Events streams on /v1/events/stream, lets it run for SECONDS, then reads
the simulator's own change log (/_control/changes) and reports:

- change-to-event latency: from the moment the simulator made a change to the moment the first
  subscriber received its event (p50 / p99 / max), and how many changes got an event;
- the fan-out: for each event, the spread between the first and the last of the subscribers to
  receive it, and the events per second delivered over all streams;
- the upstream calls per minute per vendor (the simulator's request counters) against the poll
  interval and the vendor's quota;
- of the changes without an event 12 s after the window, those still without one `CATCHUP`
  seconds (60) later: lost, not late.

    cargo build --release && python3 bench/feed.py            # 100 subscribers, 60 s
    SUBSCRIBERS=20 SECONDS=30 LIVE_MS=500 python3 bench/feed.py

Standard library only. Prints markdown.
"""

import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SWITCHBOARD_BIN", os.path.join(ROOT, "target/release/switchboard"))
SUBSCRIBERS = int(os.environ.get("SUBSCRIBERS", "100"))
SECONDS = float(os.environ.get("SECONDS", "60"))
LIVE_MS = int(os.environ.get("LIVE_MS", "1000"))
CATCHUP = float(os.environ.get("CATCHUP", "60"))
TOKEN = "demo-token"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get_json(url, token=None):
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.load(r)


class Subscriber(threading.Thread):
    """One SSE stream; records when each event id arrived."""

    def __init__(self, port, stop):
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.received = {}  # event id -> (monotonic arrival, event)
        self.error = None

    def run(self):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=SECONDS + 30)
            conn.request("GET", "/v1/events/stream", headers={"Authorization": f"Bearer {TOKEN}"})
            response = conn.getresponse()
            if response.status != 200:
                self.error = f"status {response.status}"
                return
            data = []
            while not self.stop.is_set():
                line = response.fp.readline()
                if not line:
                    return
                line = line.decode().rstrip("\n")
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    event = json.loads("\n".join(data))
                    self.received.setdefault(event["id"], (time.time(), event))
                    data = []
        except Exception as e:  # a stream cut at the end of the run
            if not self.stop.is_set():
                self.error = repr(e)


def arrival_of(received, connections, change):
    """When the first subscriber received the event of `change` (None: not yet)."""
    connection = {c["provider"]: cid for cid, c in connections.items()}.get(change["vendor"])
    for arrival, event in list(received.values()):
        if event["connection"] != connection:
            continue
        if change["kind"] == "message":
            if event["type"] == "message.created" and (event["data"].get("message") or {}).get("native_id") == change.get("message"):
                return arrival
        elif (
            event["type"] == "conversation.updated"
            and "status" in (event.get("changed") or [])
            and (event["data"].get("conversation") or {}).get("native_id") == change["conversation"]
        ):
            return arrival
    return None


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = max(0, min(len(values) - 1, round(p / 100 * len(values) + 0.5) - 1))
    return values[k]


def main():
    port = free_port()
    demo = subprocess.Popen(
        [BIN, "demo", "--bind", f"127.0.0.1:{port}", "--live-every-ms", str(LIVE_MS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        sim = None
        while sim is None:
            line = demo.stdout.readline()
            if not line:
                sys.exit("the demo stopped before it said where its simulators are")
            m = re.search(r"simulated vendors on (http://[0-9.:]+)", line)
            if m:
                sim = m.group(1)
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        config = get_json(f"http://127.0.0.1:{port}/v1/connections", TOKEN)
        connections = {c["id"]: c for c in config["data"]}
        stop = threading.Event()
        subscribers = [Subscriber(port, stop) for _ in range(SUBSCRIBERS)]
        for s in subscribers:
            s.start()
        time.sleep(1)
        counters_before = get_json(f"{sim}/_control")["requests"]
        first_seq = get_json(f"{sim}/_control/changes")["last_seq"]
        started = time.time()
        time.sleep(SECONDS)
        # Changes made in the last poll interval may not be events yet: wait a little for them,
        # and only count changes made before the measuring window ended.
        window_end = time.time()
        counters_after = get_json(f"{sim}/_control")["requests"]
        time.sleep(12)
        changes = [
            c
            for c in get_json(f"{sim}/_control/changes?after={first_seq}")["changes"]
            if datetime.fromisoformat(c["at"].replace("Z", "+00:00")).timestamp() <= window_end
        ]
        # Late or lost: a change still without an event is waited for up to CATCHUP seconds more.
        missing_at_12 = [c for c in changes if arrival_of(subscribers[0].received, connections, c) is None]
        waited = time.time()
        while time.time() - waited < CATCHUP and any(
            arrival_of(subscribers[0].received, connections, c) is None for c in missing_at_12
        ):
            time.sleep(0.5)
        lost = [c for c in missing_at_12 if arrival_of(subscribers[0].received, connections, c) is None]
        stop.set()
    finally:
        demo.terminate()
        demo.wait(timeout=30)

    errors = [s.error for s in subscribers if s.error]
    first = subscribers[0].received
    by_message = {}
    by_status = {}
    for arrival, event in first.values():
        conv = event["data"].get("conversation") or {}
        msg = event["data"].get("message") or {}
        connection = event["connection"]
        if event["type"] == "message.created":
            by_message.setdefault((connection, msg.get("native_id")), arrival)
        if event["type"] == "conversation.updated" and "status" in (event.get("changed") or []):
            by_status.setdefault((connection, conv.get("native_id")), arrival)
    vendor_connection = {c["provider"]: cid for cid, c in connections.items()}
    latencies, missed = [], 0
    missed_by = {}
    by_vendor = {}
    for c in changes:
        connection = vendor_connection.get(c["vendor"])
        at = datetime.fromisoformat(c["at"].replace("Z", "+00:00")).timestamp()
        if c["kind"] == "message":
            arrival = by_message.get((connection, c.get("message")))
        else:
            arrival = by_status.get((connection, c["conversation"]))
        if arrival is None:
            missed += 1
            key = f"{c['vendor']} {c['kind']} by {c['by']}"
            missed_by[key] = missed_by.get(key, 0) + 1
        else:
            latencies.append(arrival - at)
            by_vendor.setdefault(c["vendor"], []).append(arrival - at)

    spreads = []
    for event_id, (arrival, _) in first.items():
        arrivals = [s.received[event_id][0] for s in subscribers if event_id in s.received]
        if len(arrivals) == len(subscribers):
            spreads.append(max(arrivals) - min(arrivals))
    delivered = sum(len(s.received) for s in subscribers)
    elapsed = window_end - started

    print("# Change feed: live simulators, the poller, the SSE stream\n")
    print(
        f"- `switchboard demo --live-every-ms {LIVE_MS}` (release build, memory store, every connection "
        f"polled every 5 s within half its quota), {SUBSCRIBERS} SSE subscribers, {elapsed:.0f} s measured"
    )
    print(f"- machine: {os.cpu_count()} cores, load average {open('/proc/loadavg').read().split()[:3]}")
    if errors:
        print(f"- subscriber errors: {len(errors)} ({errors[0]})")
    print()
    print("| changes made | with an event | missed | latency p50 | p99 | max |")
    print("|---|---|---|---|---|---|")
    ms = lambda s: f"{s * 1000:.0f} ms"
    print(
        f"| {len(changes)} | {len(latencies)} | {missed} | {ms(statistics.median(latencies)) if latencies else '–'} | "
        f"{ms(percentile(latencies, 99)) if latencies else '–'} | {ms(max(latencies)) if latencies else '–'} |"
    )
    print()
    print("| vendor | changes with an event | latency p50 | p99 |")
    print("|---|---|---|---|")
    for vendor, values in sorted(by_vendor.items()):
        print(f"| {vendor} | {len(values)} | {ms(statistics.median(values))} | {ms(percentile(values, 99))} |")
    if missed_by:
        print()
        print("Changes without an event 12 s after the window, by vendor and kind: " + ", ".join(f"{k}: {n}" for k, n in sorted(missed_by.items())))
        print()
        print(f"Of those, still without an event {CATCHUP:.0f} s later (lost, not late): {len(lost)}")
    print()
    print("| events received by the first subscriber | delivered over all streams | events/s over all streams | fan-out spread p50 | p99 |")
    print("|---|---|---|---|---|")
    print(
        f"| {len(first)} | {delivered} | {delivered / max(elapsed, 1):.1f} | "
        f"{ms(statistics.median(spreads)) if spreads else '–'} | {ms(percentile(spreads, 99)) if spreads else '–'} |"
    )
    print()
    print("| vendor | upstream requests per minute | the connection's quota |")
    print("|---|---|---|")
    for vendor in sorted(counters_after):
        per_min = (counters_after[vendor] - counters_before.get(vendor, 0)) * 60 / max(elapsed, 1)
        connection = connections.get(vendor_connection.get(vendor, ""), {})
        quota = (connection.get("health") or {}).get("quota")
        quota_text = f"{quota['requests']} / {quota['per_seconds']} s" if quota else "none documented (the poller assumes 240 / 60 s)"
        print(f"| {vendor} | {per_min:.1f} | {quota_text} |")


if __name__ == "__main__":
    main()
