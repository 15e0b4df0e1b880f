#!/usr/bin/env python3
"""Runs the independent SCIM conformance tools against a running scimkit server.

Usage: conformance.py BASE_URL TOKEN [--governance]

- scim2-tester (a library): every check must be SUCCESS, COMPLIANT or ACCEPTABLE.
- scim-sanity probe (a CLI): zero failures.
With --governance (a server started with `--governance`: the agent resource types and the
Entitlement/Role catalogs), additionally:
- scim-sanity's Agent and AgenticApplication phases (4, 5, 5a) must run, every check
  passing, none skipped;
- scim2-tester's create/replace/delete cycle is run on every resource type but the
  catalogs (Okta entitlement/role schemas), which clients may only read (405 on writes by
  design); its discovery checks still cover them;
- scim2-client (scim2-tester's client) reads every value of each catalog, as a list and one
  by one, and validates each against the schema the server publishes; an empty catalog is a
  failure (nothing would be checked), so the caller fills it first.
Prints the counts and exits non-zero when any check fails.
"""
import json
import subprocess
import sys
from collections import Counter

CATALOG_SCHEMAS = {
    "urn:okta:scim:schemas:core:1.0:Entitlement",
    "urn:okta:scim:schemas:core:1.0:Role",
}
AGENT_PHASES = ("Phase 4", "Phase 5 ", "Phase 5a")


def writable_resource_types(base_url: str, token: str) -> list:
    from httpx2 import Client

    with Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}) as c:
        r = c.get("/ResourceTypes")
        r.raise_for_status()
        types = r.json()["Resources"]
    return [t["name"] for t in types if t["schema"] not in CATALOG_SCHEMAS]


def run_scim2_tester(base_url: str, token: str, resource_types=None) -> bool:
    from httpx2 import Client
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_tester import Status, check_server

    client = Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"})
    scim = SyncSCIMClient(client)
    results = check_server(scim, resource_types=resource_types)
    ok_statuses = {Status.SUCCESS}
    for name in ("COMPLIANT", "ACCEPTABLE"):
        if hasattr(Status, name):
            ok_statuses.add(getattr(Status, name))
    counts = Counter(r.status.name for r in results)
    bad = [r for r in results if r.status not in ok_statuses]
    for r in bad:
        print(f"  [{r.status.name}] {r.title}: {r.reason}")
    print(f"scim2-tester: {len(results) - len(bad)}/{len(results)} checks passed {dict(counts)}")
    if resource_types is not None:
        tested = sorted({r.resource_type for r in results if getattr(r, "resource_type", None)})
        print(f"scim2-tester: resource types exercised: {tested}")
        missing = [t for t in resource_types if t not in tested]
        if missing:
            print(f"  resource types not exercised: {missing}")
            return False
    return not bad


def run_catalog_reads(base_url: str, token: str) -> bool:
    """Every catalog value read and validated against the published schema."""
    from httpx2 import Client
    from scim2_client.engines.httpx2 import SyncSCIMClient

    client = Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"})
    scim = SyncSCIMClient(client)
    scim.discover()
    ok = True
    for rt in scim.provider.resource_types:
        if rt.schema_ not in CATALOG_SCHEMAS:
            continue
        model = scim.get_resource_model(rt.name)
        try:
            listed = scim.query(model).resources or []
            for value in listed:
                one = scim.query(model, value.id)
                if one.model_dump() != value.model_dump():
                    print(f"  [ERROR] {rt.name} {value.id}: the list and a read by id differ")
                    ok = False
        except Exception as e:  # a validation or HTTP error: report it, fail
            print(f"  [ERROR] {rt.name}: {type(e).__name__}: {e}")
            ok = False
            continue
        names = [f"{v.id}={v.display_name}" for v in listed]
        print(f"catalog {rt.name}: {len(listed)} values read and validated {names}")
        if not listed:
            print(f"  [ERROR] {rt.name}: the catalog is empty, nothing was checked")
            ok = False
    return ok


def run_scim_sanity(base_url: str, token: str) -> bool:
    proc = subprocess.run(
        [
            sys.executable, "-m", "scim_sanity", "probe", base_url,
            "--token", token, "--strict", "--i-accept-side-effects",
        ],
        capture_output=True, text=True, timeout=300,
    )
    out = proc.stdout + proc.stderr
    failures = [l for l in out.splitlines() if "[FAIL]" in l or "[ERROR]" in l]
    summary = [l.strip() for l in out.splitlines() if " passed, " in l]
    for l in failures:
        print("  " + l.strip())
    print("scim-sanity: " + (summary[-1] if summary else "no summary line"))
    if not summary:
        print(out[-3000:])
    return bool(summary) and not failures and proc.returncode == 0


def run_scim_sanity_agents(base_url: str, token: str) -> bool:
    """scim-sanity again, as JSON: the agent phases ran, passed and skipped nothing."""
    proc = subprocess.run(
        [
            sys.executable, "-m", "scim_sanity", "probe", base_url,
            "--token", token, "--strict", "--i-accept-side-effects", "--json-output",
        ],
        capture_output=True, text=True, timeout=300,
    )
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        print("scim-sanity agents: no JSON report\n" + (proc.stdout + proc.stderr)[-3000:])
        return False
    ok = True
    for phase in AGENT_PHASES:
        rows = [r for r in report["results"] if str(r.get("phase", "")).startswith(phase)]
        counts = Counter(str(r.get("status")).lower() for r in rows)
        print(f"scim-sanity agents: {phase.strip()}: {dict(counts)}")
        bad = [r for r in rows if str(r.get("status")).lower() != "pass"]
        for r in bad:
            print(f"  [{r.get('status')}] {r.get('phase')}: {r.get('name')}: {r.get('message')}")
        if not rows or bad:
            ok = False
    summary = report["summary"]
    print(f"scim-sanity agents: summary {summary}")
    if summary["failed"] or summary["errors"] or summary["skipped"]:
        for r in report["results"]:
            if str(r.get("status")).lower() not in ("pass", "warn"):
                print(f"  [{r.get('status')}] {r.get('phase')}: {r.get('name')}: {r.get('message')}")
        ok = False
    return ok and proc.returncode == 0


def main() -> int:
    args = [a for a in sys.argv[1:] if a != "--governance"]
    governance = len(args) != len(sys.argv) - 1
    if len(args) != 2:
        print(__doc__)
        return 2
    base_url, token = args
    if governance:
        types = writable_resource_types(base_url, token)
        print(f"resource types written by the tools: {types}")
        ok_tester = run_scim2_tester(base_url, token, types)
        ok_sanity = run_scim_sanity(base_url, token)
        ok_agents = run_scim_sanity_agents(base_url, token)
        ok_catalogs = run_catalog_reads(base_url, token)
        return 0 if ok_tester and ok_sanity and ok_agents and ok_catalogs else 1
    ok_tester = run_scim2_tester(base_url, token)
    ok_sanity = run_scim_sanity(base_url, token)
    return 0 if ok_tester and ok_sanity else 1


if __name__ == "__main__":
    sys.exit(main())
