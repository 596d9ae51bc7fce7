from tests.support.redis import redis_url  # noqa: F401 (a fixture for the multi-process tests)
