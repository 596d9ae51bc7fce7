"""The benches still run, at a tiny size: bench/audit.py (a province of a few cells, every page
it measures answering 200, and the machine-readable last line, one per database),
bench/signalling.py, bench/relay.py and bench/join.py. Their figures are read by people, never asserted."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

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


SIGNALLING_LINE = re.compile(
    r"^connections=20 msgs_per_s=\d+ bare_msgs_per_s=\d+ ratio=\d+\.\d\d p50_ms=[\d.]+ p99_ms=[\d.]+ "
    r"kb_per_conn=[\d.]+( two_process_msgs_per_s=\d+ two_process_ratio=\d+\.\d\d two_process_p99_ms=[\d.]+)?$")


def test_signalling_bench_runs_at_a_tiny_size():
    """Two rooms of ten, one second per phase, against the bare server and ours (and two
    processes over Redis when REDIS_URL is set): the run completes and prints its line."""
    redis_url = os.environ.get("REDIS_URL", "")
    args = [sys.executable, "-m", "bench.signalling", "--sizes", "20", "--duration", "1", "--workers", "1",
            "--systems", "bare,one,two" if redis_url else "bare,one"]
    env = {**os.environ, **({"REDIS_URL": redis_url} if redis_url else {})}
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    match = SIGNALLING_LINE.match(done.stdout.strip().splitlines()[-1])
    assert match, done.stdout
    assert bool(match.group(1)) == bool(redis_url), done.stdout  # the two-process run iff Redis


def test_relay_bench_runs_at_a_tiny_size(tmp_path):
    """Our relay alone (Janus is for the real run), two subscribers and the decoding checker,
    two-second windows: every subscriber served, the checker's frames the publisher's own."""
    if os.geteuid() != 0:
        pytest.skip("bench/relay.py needs root for its network namespace (CI runs as root)")
    out = tmp_path / "relay.json"
    args = [sys.executable, str(ROOT / "bench" / "relay.py"), "--systems", "relay", "-k", "2", "--seconds", "2",
            "--sizes", "320x240", "--per-worker", "2", "--json", str(out)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=400, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    [result] = json.loads(out.read_text())
    assert (result["system"], result["size"], result["subscribers"]) == ("relay", "320x240", 2), result
    assert result["frames_checked"] > 0 and result["byte_identical"] == 1.0, result
    assert result["decode_errors"] == 0 and result["loop_lag"] is not None, result
    assert "relay 320x240: " in done.stdout and "streams/core" in done.stdout


JOIN_LINE = re.compile(r"^joins=(\d+) joins_per_s=\d+\.\d p50_ms=\d+ p99_ms=\d+ bare_joins_per_s=\d+\.\d$")


def test_join_bench_runs_at_a_tiny_size():
    """bench/join.py: twenty members fetch a token and reach ``welcome``, then the bare route."""
    args = [sys.executable, "-m", "bench.join", "--members", "20", "--ramp", "0.5"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    match = JOIN_LINE.match(done.stdout.strip().splitlines()[-1])
    assert match and match.group(1) == "20", done.stdout
