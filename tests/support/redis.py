"""The Redis the multi-process tests talk to (REDIS_URL; CI sets it and starts Redis)."""

from __future__ import annotations

import os

import pytest
import redis


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    if not url:
        pytest.skip("REDIS_URL is not set (CI sets it)")
    try:
        redis.from_url(url).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis is not reachable: {exc}")
    return url
