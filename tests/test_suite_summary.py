"""The suite says when it left the PostgreSQL variants out (a local run without DATABASE_URL)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.databases import postgres_url

ONE_DATABASE_TEST = "tests/test_members.py::test_probation_defaults_to_twelve_months"
NOTICE = "PostgreSQL variants not run"


def run_pytest(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CI", "PYTEST_ADDOPTS")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args, ONE_DATABASE_TEST],
                          capture_output=True, text=True, env=environ | env, timeout=120)


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["one process", "two workers, as scripts/test runs"])
def test_a_run_without_postgresql_says_so_in_its_summary(workers: tuple[str, ...]):
    result = run_pytest(*workers)
    assert result.returncode == 0, result.stdout[-2000:]
    assert NOTICE in result.stdout
    assert "1 database test(s) ran on SQLite only" in result.stdout
    assert "DATABASE_URL=postgresql://" in result.stdout


def test_a_run_with_postgresql_does_not():
    url = postgres_url()
    if url is None:
        pytest.skip("needs DATABASE_URL=postgresql://… (CI sets it)")
    result = run_pytest(DATABASE_URL=url)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "2 passed" in result.stdout and NOTICE not in result.stdout
