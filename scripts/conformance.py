#!/usr/bin/env python3
"""Runs the independent SCIM conformance tools against a running scimkit server.

Usage: conformance.py BASE_URL TOKEN

- scim2-tester (a library): every check must be SUCCESS, COMPLIANT or ACCEPTABLE.
- scim-sanity probe (a CLI): zero failures.
Prints the counts and exits non-zero when any check fails.
"""
import subprocess
import sys
from collections import Counter


def run_scim2_tester(base_url: str, token: str) -> bool:
    from httpx2 import Client
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_tester import Status, check_server

    client = Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"})
    scim = SyncSCIMClient(client)
    results = check_server(scim)
    ok_statuses = {Status.SUCCESS}
    for name in ("COMPLIANT", "ACCEPTABLE"):
        if hasattr(Status, name):
            ok_statuses.add(getattr(Status, name))
    counts = Counter(r.status.name for r in results)
    bad = [r for r in results if r.status not in ok_statuses]
    for r in bad:
        print(f"  [{r.status.name}] {r.title}: {r.reason}")
    print(f"scim2-tester: {len(results) - len(bad)}/{len(results)} checks passed {dict(counts)}")
    return not bad


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


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    base_url, token = sys.argv[1], sys.argv[2]
    ok_tester = run_scim2_tester(base_url, token)
    ok_sanity = run_scim_sanity(base_url, token)
    return 0 if ok_tester and ok_sanity else 1


if __name__ == "__main__":
    sys.exit(main())
