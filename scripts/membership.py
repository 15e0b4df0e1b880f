#!/usr/bin/env python3
"""Group-membership figures over HTTP (driven by scripts/membership.sh; python3 stdlib only).

  membership.py measure BASE_URL TOKEN STORE SEED_SECONDS OUT.json
      against a running server whose tenant holds USERS seeded users: builds group L (BIG
      members, PATCHes of CHUNK ids), group S (SMALL members), times REPEAT one-member adds on
      each, THREADS x PER_THREAD concurrent one-member adds on a fresh group C, and a PATCH
      adding UNKNOWN ids that do not exist (median of 5). Writes the figures as JSON.
      Exits 1 when a setup step fails; a missed target is only reported.
  membership.py table OUT.json...
      prints the Markdown section (with the membership.sh markers) for BENCHMARKS.md.
"""
import http.client
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from urllib.parse import urlsplit

def knob(name, default):
    return int(os.environ.get(name, default))

USERS, BIG, SMALL = knob("USERS", 100000), knob("BIG", 100000), knob("SMALL", 100)
REPEAT, CHUNK, UNKNOWN = knob("REPEAT", 50), knob("CHUNK", 1000), knob("UNKNOWN", 5000)
THREADS, PER_THREAD = knob("THREADS", 16), knob("PER_THREAD", 20)
UNKNOWN_RUNS = 5
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
TARGET_RATIO, TARGET_UNKNOWN_MS = 1.5, 50.0


def log(msg):
    print(f"   [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class SetupError(Exception):
    pass


class Client:
    """One keep-alive connection; `call` returns (status, body bytes, seconds)."""

    def __init__(self, base, token):
        u = urlsplit(base)
        self.host, self.port, self.prefix = u.hostname, u.port, u.path.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}",
                        "Content-Type": "application/scim+json",
                        "Accept": "application/scim+json"}
        self.conn = None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
            try:
                start = time.perf_counter()
                self.conn.request(method, self.prefix + path, body=data, headers=self.headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                elapsed = time.perf_counter() - start
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return resp.status, raw, elapsed
            except (http.client.HTTPException, ConnectionError):
                self.close()  # the server closed an idle keep-alive connection: retry once
                if attempt == 2:
                    raise

    def ok(self, method, path, body=None, what=""):
        status, raw, elapsed = self.call(method, path, body)
        if not 200 <= status < 300:
            raise SetupError(f"{what or method + ' ' + path}: {status} {raw[:500]!r}")
        return (json.loads(raw) if raw else None), elapsed

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def add_members(ids, op="add"):
    return {"schemas": [PATCH_OP],
            "Operations": [{"op": op, "path": "members", "value": [{"value": i} for i in ids]}]}


def member_count(c, gid):
    doc, _ = c.ok("GET", f"/Groups/{gid}", what="reading a group")
    return len(doc.get("members") or [])


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


def one_member_adds(c, s_id, l_id, spares):
    """REPEAT Entra-style single-member adds on S and on L, interleaved (order alternating)."""
    res = {"S": ([], [], Counter()), "L": ([], [], Counter())}
    for i, uid in enumerate(spares):
        body = {"schemas": [PATCH_OP],
                "Operations": [{"op": "Add", "path": "members", "value": [{"value": uid}]}]}
        order = [("S", s_id), ("L", l_id)] if i % 2 == 0 else [("L", l_id), ("S", s_id)]
        for name, gid in order:
            status, raw, elapsed = c.call("PATCH", f"/Groups/{gid}", body)
            lat, size, statuses = res[name]
            lat.append(elapsed * 1000)
            size.append(len(raw))
            statuses[status] += 1
    return {name: {"p50_ms": statistics.median(lat), "p90_ms": pct(lat, 90),
                   "size": int(statistics.median(size)), "statuses": dict(statuses)}
            for name, (lat, size, statuses) in res.items()}


def concurrent_adds(base, token, c, ids):
    gid = c.ok("POST", "/Groups", {"schemas": [GROUP], "displayName": "membership-C"},
               what="creating group C")[0]["id"]
    statuses, lock = Counter(), threading.Lock()
    barrier = threading.Barrier(THREADS + 1)

    def worker(mine):
        cl = Client(base, token)
        cl.call("GET", "/ServiceProviderConfig")  # open the connection before the start
        barrier.wait()
        seen = Counter()
        for uid in mine:
            try:
                seen[cl.call("PATCH", f"/Groups/{gid}", add_members([uid]))[0]] += 1
            except (OSError, http.client.HTTPException) as e:
                seen[type(e).__name__] += 1
        cl.close()
        with lock:
            statuses.update(seen)

    threads = [threading.Thread(target=worker, args=(ids[t * PER_THREAD:(t + 1) * PER_THREAD],))
               for t in range(THREADS)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ok = sum(n for s, n in statuses.items() if isinstance(s, int) and 200 <= s < 300)
    return {"ok": ok, "total": THREADS * PER_THREAD, "statuses": {str(k): v for k, v in statuses.items()},
            "wall_s": wall, "members": member_count(c, gid)}


def measure(base, token, store, seed_seconds, out):
    need = max(BIG, SMALL, THREADS * PER_THREAD)
    if USERS < need:
        raise SetupError(f"USERS={USERS} is below the {need} users the steps need")
    c = Client(base, token)
    total = c.ok("GET", "/Users?count=0")[0]["totalResults"]
    if total != USERS:
        raise SetupError(f"expected {USERS} seeded users, the server has {total}")
    log(f"{store}: reading the ids of {USERS} users (pages of 1000)")
    ids, start = [], time.perf_counter()
    while len(ids) < USERS:
        page = c.ok("GET", f"/Users?startIndex={len(ids) + 1}&count=1000&attributes=id")[0]
        got = [r["id"] for r in page.get("Resources", [])]
        if not got:
            break
        ids.extend(got)
    if len(set(ids)) != USERS:
        raise SetupError(f"paging gave {len(set(ids))} distinct ids, expected {USERS}")
    log(f"{store}: {len(ids)} ids in {time.perf_counter() - start:.1f} s; creating {REPEAT} spare users")
    spares = [c.ok("POST", "/Users", {"schemas": [USER], "userName": f"spare{i:04}@example.com",
                                      "displayName": f"Spare {i}", "active": True},
                   what="creating a spare user")[0]["id"] for i in range(REPEAT)]

    s_id = c.ok("POST", "/Groups", {"schemas": [GROUP], "displayName": "membership-S",
                                    "members": [{"value": i} for i in ids[:SMALL]]},
                what="creating group S")[0]["id"]
    l_id = c.ok("POST", "/Groups", {"schemas": [GROUP], "displayName": "membership-L"},
                what="creating group L")[0]["id"]
    log(f"{store}: building L with {BIG} members, {CHUNK} per PATCH")
    build = time.perf_counter()
    for k in range(0, BIG, CHUNK):
        c.ok("PATCH", f"/Groups/{l_id}", add_members(ids[k:k + CHUNK]), what=f"building L at {k}")
        if k and k % (20 * CHUNK) == 0:
            log(f"{store}:   {k} members, {time.perf_counter() - build:.1f} s")
    build = time.perf_counter() - build
    for gid, want in ((s_id, SMALL), (l_id, BIG)):
        if (n := member_count(c, gid)) != want:
            raise SetupError(f"group {gid} has {n} members, expected {want}")
    if os.environ.get("SETTLE_CMD"):
        # What the database's own maintenance does shortly after a bulk load (PostgreSQL:
        # autovacuum's ANALYZE); measured right after the load, stale planner statistics
        # would be measured instead of the request.
        log(f"{store}: settling the database after the load ({os.environ['SETTLE_CMD']})")
        subprocess.run(os.environ["SETTLE_CMD"], shell=True, check=True)
    log(f"{store}: L built in {build:.1f} s; {REPEAT} one-member adds on S and on L")
    single = one_member_adds(c, s_id, l_id, spares)

    log(f"{store}: {THREADS} threads x {PER_THREAD} concurrent one-member adds on a fresh group")
    conc = concurrent_adds(base, token, c, ids)

    log(f"{store}: {UNKNOWN_RUNS} PATCHes adding {UNKNOWN} unknown ids to S")
    lat, statuses = [], Counter()
    for _ in range(UNKNOWN_RUNS):
        status, raw, elapsed = c.call("PATCH", f"/Groups/{s_id}",
                                      add_members([str(uuid.uuid4()) for _ in range(UNKNOWN)]))
        lat.append(elapsed * 1000)
        statuses[status] += 1
    c.close()
    result = {"store": store, "users": USERS, "big": BIG, "small": SMALL, "repeat": REPEAT,
              "chunk": CHUNK, "unknown": UNKNOWN, "threads": THREADS, "per_thread": PER_THREAD,
              "seed_s": seed_seconds, "build_s": build, "single": single, "concurrent": conc,
              "unknown_ids": {"p50_ms": statistics.median(lat), "statuses": dict(statuses)}}
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    s, l = single["S"], single["L"]
    log(f"{store}: S {s['p50_ms']:.1f} ms {s['size']} B, L {l['p50_ms']:.1f} ms {l['size']} B; "
        f"concurrent {conc['ok']}/{conc['total']} 2xx, {conc['members']} members; "
        f"unknown ids {result['unknown_ids']['p50_ms']:.1f} ms")


def verdict(ok):
    return "met" if ok else "NOT met"


def statuses(d):
    return ", ".join(f"{k}×{v}" for k, v in sorted(d.items(), key=lambda kv: str(kv[0])))


def ms(v):
    return f"{v:.1f} ms" if v < 100 else f"{v:.0f} ms"


def table(files):
    rs = [json.load(open(f)) for f in files]
    r0 = rs[0]
    head = "| | " + " | ".join(r["store"] for r in rs) + " | target |"
    rows = [head, "| --- |" + " ---: |" * len(rs) + " --- |"]

    def row(label, cell, target=""):
        rows.append(f"| {label} | " + " | ".join(cell(r) for r in rs) + f" | {target} |")

    def ratio(r, key):
        large, small = r["single"]["L"][key], r["single"]["S"][key]
        if small == 0:
            # 204 answers: no body at either size.
            return f"equal, {large} and {small} ({verdict(large == 0)})"
        v = large / small
        return f"{v:.2f}× ({verdict(v <= TARGET_RATIO)})"

    n = r0["threads"] * r0["per_thread"]
    row(f"seeding {r0['users']:,} users (`--seed-users`, before listening)", lambda r: f"{r['seed_s']:.1f} s")
    row(f"building L: {r0['big']:,} members, {r0['chunk']:,} per PATCH", lambda r: f"{r['build_s']:.1f} s")
    for g, label in (("S", f"S ({r0['small']} members)"), ("L", f"L ({r0['big']:,} members)")):
        row(f"one-member add on {label}: p50 / p90", lambda r, g=g: f"{ms(r['single'][g]['p50_ms'])} / {ms(r['single'][g]['p90_ms'])}")
    row("latency ratio L/S (p50)", lambda r: ratio(r, "p50_ms"), f"≤ {TARGET_RATIO}×")
    row("response body S / L (median bytes)", lambda r: f"{r['single']['S']['size']:,} / {r['single']['L']['size']:,}")
    row("size ratio L/S", lambda r: ratio(r, "size"), f"≤ {TARGET_RATIO}×")
    row("statuses of the one-member adds (S; L)", lambda r: f"{statuses(r['single']['S']['statuses'])}; {statuses(r['single']['L']['statuses'])}")
    row(f"{r0['threads']} threads × {r0['per_thread']} concurrent adds: 2xx",
        lambda r: f"{r['concurrent']['ok']}/{r['concurrent']['total']} ({verdict(r['concurrent']['ok'] == r['concurrent']['total'])})",
        f"{n}/{n}")
    row("… statuses seen", lambda r: statuses(r["concurrent"]["statuses"]))
    row("… members afterwards", lambda r: f"{r['concurrent']['members']} ({verdict(r['concurrent']['members'] == r['concurrent']['total'])})", f"{n}")
    row("… wall time", lambda r: f"{r['concurrent']['wall_s']:.2f} s")
    row(f"PATCH adding {r0['unknown']:,} unknown ids to S: p50 of {UNKNOWN_RUNS}",
        lambda r: f"{ms(r['unknown_ids']['p50_ms'])} ({verdict(r['unknown_ids']['p50_ms'] <= TARGET_UNKNOWN_MS)})",
        f"≤ {TARGET_UNKNOWN_MS:.0f} ms")
    row("… statuses", lambda r: statuses(r["unknown_ids"]["statuses"]))
    return "\n".join(rows)


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "measure":
        try:
            measure(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), sys.argv[6])
        except (SetupError, OSError, http.client.HTTPException, ValueError, KeyError) as e:
            print(f"setup failed: {e}", file=sys.stderr)
            sys.exit(1)
    elif len(sys.argv) >= 3 and sys.argv[1] == "table":
        print(table(sys.argv[2:]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
