"""Runs schemathesis against a running Gatehouse with docs/openapi.yaml; see run.sh.

    python run.py <base-url> [admin-token]

Streams schemathesis's own output (each failure with a curl line that reproduces it), then
prints one summary line and a machine-readable one for tests/e2e/openapi.test.mjs:

    openapi fuzz: 6000 cases in 91.2 s (schemathesis 4.32.5): 0 unique failures, 0 errors
    SCHEMATHESIS_RESULT {"schemathesis": "4.32.5", "cases": 6000, ...}

Exit status: 0 when the run completed with no failure and at least GATEHOUSE_FUZZ_MIN_CASES
cases; 1 when a check failed (a 5xx, an undocumented status, a content type or body or
header that does not conform); 2 for usage errors, schemathesis errors or too few cases.

Environment (all optional):
  GATEHOUSE_FUZZ_MAX_TIME    time budget of the run in seconds (default 90); fuzzing and
                             stateful testing repeat until it is spent
  GATEHOUSE_FUZZ_MIN_CASES   fewer generated cases fail the run (default 2000)
  GATEHOUSE_FUZZ_WORKERS     concurrent schemathesis workers (default 1: with more, Debian 12's
                             Python 3.11.2 can fail in hypothesis's ast.parse with "SystemError:
                             AST constructor recursion depth mismatch", a CPython threading bug)
  GATEHOUSE_FUZZ_SEED        a seed, to replay a run (printed at the end of each run)
  GATEHOUSE_FUZZ_REPORT_DIR  keep the JSON and JUnit reports and an NDJSON log of every request
                             and answer there (default: a temporary directory, removed)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SPEC = os.path.join(ROOT, "docs", "openapi.yaml")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        sys.exit(f"run.py: {name} must be a whole number, got {raw!r}")


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or not argv[1].startswith(("http://", "https://")):
        print("usage: run.sh <base-url> [admin-token]", file=sys.stderr)
        return 2
    base_url = argv[1].rstrip("/")
    admin_token = argv[2] if len(argv) == 3 else ""
    max_time = env_int("GATEHOUSE_FUZZ_MAX_TIME", 90)
    min_cases = env_int("GATEHOUSE_FUZZ_MIN_CASES", 2000)
    workers = env_int("GATEHOUSE_FUZZ_WORKERS", 1)
    seed = os.environ.get("GATEHOUSE_FUZZ_SEED", "")
    report_dir = os.environ.get("GATEHOUSE_FUZZ_REPORT_DIR") or tempfile.mkdtemp(prefix="gatehouse-fuzz-")
    keep_reports = bool(os.environ.get("GATEHOUSE_FUZZ_REPORT_DIR"))
    os.makedirs(report_dir, exist_ok=True)
    json_path = os.path.join(report_dir, "schemathesis.json")
    junit_path = os.path.join(report_dir, "schemathesis.junit.xml")

    # `-m`: the virtualenv was built elsewhere and renamed into place, so its console scripts'
    # #! lines are stale; its python finds its packages wherever it is.
    cmd = [
        sys.executable, "-m", "schemathesis.cli",
        "--config-file", os.path.join(HERE, "schemathesis.toml"),
        "--no-color",
        "run", SPEC,
        "--url", base_url,
        "--max-time", str(max_time),
        "--workers", str(workers),
        "--request-timeout", "30",
        "--report", "json,junit,ndjson" if keep_reports else "json,junit",
        "--report-json-path", json_path,
        "--report-junit-path", junit_path,
    ]
    if keep_reports:
        # Every request and answer, for looking into a run (large: several MB a minute).
        cmd += ["--report-ndjson-path", os.path.join(report_dir, "schemathesis.ndjson")]
    if seed:
        cmd += ["--seed", seed]
    env = {
        **os.environ,
        "GATEHOUSE_BASE_URL": base_url,
        "GATEHOUSE_ADMIN_TOKEN": admin_token,
        "SCHEMATHESIS_HOOKS": os.path.join(HERE, "hooks.py"),
        "PYTHONUNBUFFERED": "1",
    }
    started = time.monotonic()
    try:
        # The budget covers generation; shrinking a failure and the last requests take a little
        # longer. Two more minutes is a hang.
        code = subprocess.run(cmd, env=env, cwd=ROOT, timeout=max_time + 120).returncode
    except subprocess.TimeoutExpired:
        print(f"openapi fuzz: schemathesis did not finish within {max_time + 120} s", file=sys.stderr)
        return 2
    elapsed = time.monotonic() - started

    try:
        with open(json_path, encoding="utf-8") as f:
            report = json.load(f)
    except (OSError, ValueError) as err:
        print(f"openapi fuzz: no JSON report ({err}); schemathesis exited {code}", file=sys.stderr)
        return 2
    cases = report["test_cases"]["generated"]
    failures = [
        {"code": f["code"], "title": f["title"], "count": f["count"], "operations": f["operations"]}
        for f in report["failures"]
    ]
    errors = report.get("errors") or []
    summary = {
        "schemathesis": report["schemathesis_version"],
        "cases": cases,
        "seconds": round(elapsed, 1),
        "with_failures": report["test_cases"]["with_failures"],
        "unique_failures": report["test_cases"]["unique_failures"],
        "failures": failures,
        "errors": len(errors),
        "operations": report["operations"],
        "phases": {name: phase["status"] for name, phase in report["phases"].items()},
        "seed": str(report.get("seed")),
        "exit_code": code,
        "reports": report_dir if keep_reports else None,
    }
    n_fail = summary["unique_failures"]
    print(
        f"\nopenapi fuzz: {cases} cases in {elapsed:.1f} s (schemathesis {summary['schemathesis']}): "
        f"{n_fail} unique failure{'s' if n_fail != 1 else ''}, {len(errors)} error{'s' if len(errors) != 1 else ''}"
    )
    for f in failures:
        print(f"  {f['code']} {f['title']} ({f['count']}): {', '.join(f['operations'])}")
    print("SCHEMATHESIS_RESULT " + json.dumps(summary), flush=True)
    if not keep_reports:
        shutil.rmtree(report_dir, ignore_errors=True)

    if failures:
        return 1
    if errors or code not in (0, 1):
        print(f"openapi fuzz: schemathesis reported errors (exit {code})", file=sys.stderr)
        return 2
    if cases < min_cases:
        print(f"openapi fuzz: only {cases} cases ran, fewer than {min_cases}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
