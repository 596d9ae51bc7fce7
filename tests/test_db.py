"""The engine's PostgreSQL connections plan every statement for its own parameters.

psycopg prepares a statement run five times on a connection, and PostgreSQL would then plan
it once for any parameters; for the statements that bind a list of ids as one array (a
province's 3,000 cells) that plan guessed ten rows and ran the audit's tallies in twice the
time (app/db.py, ``CUSTOM_PLANS``). Timings are the benchmark's (bench/audit.py); this checks
the setting holds, also next to the options a caller passes."""

import pytest
from sqlalchemy import text

from app.db import make_engine
from tests.support.databases import postgres_url


@pytest.mark.skipif(not postgres_url(), reason="PostgreSQL only: DATABASE_URL is not a PostgreSQL URL")
def test_postgresql_connections_plan_each_statement_for_its_parameters():
    url = postgres_url()
    assert url is not None
    engine = make_engine(url, connect_args={"options": "-csearch_path=public"})
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
            assert conn.execute(text("SHOW search_path")).scalar() == "public"
    finally:
        engine.dispose()


@pytest.mark.skipif(not postgres_url(), reason="PostgreSQL only: DATABASE_URL is not a PostgreSQL URL")
def test_options_in_the_url_are_kept():
    url = postgres_url()
    assert url is not None
    engine = make_engine(url + ("&" if "?" in url else "?") + "options=-csearch_path%3Dpg_catalog")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
            assert conn.execute(text("SHOW search_path")).scalar() == "pg_catalog"
    finally:
        engine.dispose()
