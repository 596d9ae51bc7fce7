"""The command line: every command documented in --help works against DATABASE_URL."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

COMMANDS = ("serve", "migrate", "demo", "create-account", "import-members", "notices", "flags", "verify-audit",
            "rebuild-aggregates")


def run(*args, env):
    return subprocess.run([sys.executable, "-m", "app", *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def env(tmp_path, backend, postgres_schema):
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DATA_DIR": str(tmp_path / "var")}
    if backend == "sqlite":
        base["DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    else:
        # A schema of its own, so that this test starts from an empty database.
        from sqlalchemy import text

        from app.db import make_engine

        schema = postgres_schema.schema + "_cli"
        engine = make_engine(postgres_schema.url)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        base["DATABASE_URL"] = postgres_schema.plain_url + f"?options=-csearch_path%3D{schema}"
        base["_SCHEMA"] = schema
        yield base
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()
        return
    yield base


def test_help_lists_every_command():
    done = subprocess.run([sys.executable, "-m", "app", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for command in COMMANDS:
        assert command in done.stdout


def test_migrate_is_idempotent_and_demo_loads_once(env):
    first, second = run("migrate", env=env), run("migrate", env=env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "revision" in second.stdout
    demo = run("demo", env=env)
    assert demo.returncode == 0 and "Demo organisation loaded." in demo.stdout
    assert "bithu" in demo.stdout and "chibo-demo-2026" in demo.stdout
    again = run("demo", env=env)
    assert "already present" in again.stdout
    # The demo raised its flags as it marked the rosters: a recheck finds nothing to change,
    # and the audit log it wrote verifies.
    from meetings.foundation.base import local_today

    flags = run("flags", "--year", str(local_today().year), env=env)
    assert flags.returncode == 0 and "0 raised, 0 lowered" in flags.stdout, flags.stdout + flags.stderr
    verified = run("verify-audit", env=env)
    assert verified.returncode == 0 and "Audit log intact:" in verified.stdout, verified.stdout + verified.stderr


def test_rebuild_aggregates_finds_and_mends_writes_around_the_application(env):
    """The demo, written through the domain, leaves the audit's cell-month figures equal to a
    recomputation; a roster line changed by SQL makes ``--check`` fail (exit 1) until
    ``rebuild-aggregates`` recomputes them."""
    from sqlalchemy import text

    from app.db import make_engine

    assert run("demo", env=env).returncode == 0
    check = run("rebuild-aggregates", "--check", env=env)
    assert check.returncode == 0 and "up to date" in check.stdout, check.stdout + check.stderr
    engine = make_engine(env["DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(text("UPDATE attendance SET status = 'absent', mode = NULL, excused = :no WHERE id = "
                          "(SELECT MIN(id) FROM attendance WHERE status = 'present' AND expected = :yes)"),
                     {"no": False, "yes": True})
    engine.dispose()
    check = run("rebuild-aggregates", "--check", env=env)
    assert check.returncode == 1 and "DIFFER in 1 row(s)" in check.stdout, check.stdout + check.stderr
    rebuilt = run("rebuild-aggregates", env=env)
    assert rebuilt.returncode == 0 and "rebuilt" in rebuilt.stdout, rebuilt.stdout + rebuilt.stderr
    assert run("rebuild-aggregates", "--check", env=env).returncode == 0


def test_demo_reset_starts_the_demo_over(env, backend):
    """`python -m app demo --reset` (what `scripts/demo --reset` runs) throws away what was
    changed since and loads the demo as new; on PostgreSQL it refuses and changes nothing."""
    from sqlalchemy import create_engine, text

    assert run("demo", env=env).returncode == 0
    engine = create_engine(env["DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(text("UPDATE accounts SET display_name = 'Đã sửa' WHERE username = 'bithu'"))
    engine.dispose()  # a pooled SQLite connection would keep reading the deleted file
    reset = run("demo", "--reset", env=env)
    with engine.connect() as conn:
        name = conn.execute(text("SELECT display_name FROM accounts WHERE username = 'bithu'")).scalar_one()
    engine.dispose()
    if backend == "sqlite":
        assert reset.returncode == 0 and "Demo organisation loaded." in reset.stdout, reset.stderr
        assert name != "Đã sửa"
    else:
        assert reset.returncode == 2 and "only starts over an SQLite" in reset.stderr
        assert name == "Đã sửa"


def test_notices_job_once(env):
    run("demo", env=env)
    done = run("notices", env=env)
    # No SMTP server configured: in-app notices are created, e-mail waits in the outbox.
    assert done.returncode == 0 and "Notices created:" in done.stdout and "e-mails sent: 0" in done.stdout


def test_create_account(env):
    run("demo", env=env)
    done = run("create-account", "--username", "kiemtra2", "--role", "auditor", "--org", "QT-HG", env=env)
    assert done.returncode == 0 and "Temporary password:" in done.stdout
    dup = run("create-account", "--username", "kiemtra2", env=env)
    assert dup.returncode == 2 and "đã có người dùng" in dup.stderr
    bad_org = run("create-account", "--username", "x1", "--role", "auditor", "--org", "KHONGCO", env=env)
    assert bad_org.returncode == 2 and "KHONGCO" in bad_org.stderr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_health_and_login(env):
    run("demo", env=env)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as r:
            assert "Đăng nhập" in r.read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def test_settings_hide_secrets_and_url_passwords(tmp_path):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DATA_DIR": str(tmp_path / "var"),
           "SECRET_KEY": "khoa-bi-mat-rat-dai-0123456789-abcdef", "TURN_SECRET": "turn-bi-mat",
           "SMTP_PASSWORD": "mat-khau-thu", "REDIS_URL": "redis://chibo:mat-khau-redis@10.0.0.5:6379/0",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    done = run("settings", env=env)
    assert done.returncode == 0, done.stderr
    for secret in ("khoa-bi-mat", "turn-bi-mat", "mat-khau-thu", "mat-khau-redis"):
        assert secret not in done.stdout
    assert "SECRET_KEY=(set, hidden)" in done.stdout and "SMTP_PASSWORD=(set, hidden)" in done.stdout
    assert "redis://chibo:***@10.0.0.5:6379/0" in done.stdout  # where it points is still shown
    assert f"sqlite:///{tmp_path / 'x.db'}" in done.stdout
