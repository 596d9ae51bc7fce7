"""bench/audit.py still runs: a province of a few cells, every page it measures answering 200,
and the machine-readable last line (one per database)."""

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.databases import postgres_url

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^db=(sqlite|postgresql) cells=\d+ members=\d+ province_page_ms=\d+ bare_sql_ms=\d+ "
                  r"ratio=\d+\.\d\d commune_page_ms=\d+ member_record_ms=\d+ commune_records_ms=\d+$")


def test_audit_bench_runs_at_a_tiny_size():
    url = postgres_url()
    args = [sys.executable, str(ROOT / "bench" / "audit.py"), "--cells", "8", "--repeat", "1",
            "--db", "both" if url else "sqlite"]
    env = {**os.environ, **({"BENCH_PG_URL": url} if url else {})}
    done = subprocess.run(args, capture_output=True, text=True, timeout=180, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    expected = ["sqlite", "postgresql"] if url else ["sqlite"]
    last = lines[-len(expected):]
    assert [LINE.match(line).group(1) for line in last] == expected, done.stdout  # type: ignore[union-attr]
    assert "generated 8 cells" in done.stdout


JOIN_LINE = re.compile(r"^joins=(\d+) joins_per_s=\d+\.\d p50_ms=\d+ p99_ms=\d+ bare_joins_per_s=\d+\.\d$")


def test_join_bench_runs_at_a_tiny_size():
    """bench/join.py: twenty members fetch a token and reach ``welcome``, then the bare route."""
    args = [sys.executable, "-m", "bench.join", "--members", "20", "--ramp", "0.5"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    match = JOIN_LINE.match(done.stdout.strip().splitlines()[-1])
    assert match and match.group(1) == "20", done.stdout
