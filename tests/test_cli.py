"""The command line: every command documented in --help works against DATABASE_URL."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

COMMANDS = ("serve", "migrate", "demo", "create-account", "import-members", "notices", "flags", "verify-audit",
            "rebuild-aggregates")


def run(*args, env):
    return subprocess.run([sys.executable, "-m", "app", *args], env=env, capture_output=True, text=True, timeout=120)


def _base_env(tmp_path):
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DATA_DIR": str(tmp_path / "var")}


class _Schemas:
    """PostgreSQL schemas of this module's own, each starting empty, dropped at the end."""

    def __init__(self, postgres_schema):
        from app.db import make_engine

        self.source = postgres_schema
        self.engine = make_engine(postgres_schema.url)
        self.made: list[str] = []

    def fresh(self, suffix):
        from sqlalchemy import text

        schema = f"{self.source.schema}_{suffix}"
        with self.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        self.made.append(schema)
        return self.source.plain_url + f"?options=-csearch_path%3D{schema}"

    def drop(self):
        from sqlalchemy import text

        with self.engine.begin() as conn:
            for schema in self.made:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        self.engine.dispose()


@pytest.fixture(scope="module")
def schemas(postgres_schema):
    if postgres_schema is None:
        yield None
        return
    made = _Schemas(postgres_schema)
    yield made
    made.drop()


class Loaded:
    """What migrating an empty database twice and loading the demo twice printed, and the
    database that holds the result (one per backend for this module: loading the demo takes
    seconds, and the tests below only need a database that holds it)."""

    def __init__(self, env):
        self.env = env
        self.migrations = run("migrate", env=env), run("migrate", env=env)
        self.demo = run("demo", env=env)
        self.again = run("demo", env=env)
        from meetings.foundation.base import local_today

        self.flags = run("flags", "--year", str(local_today().year), env=env)
        self.verified = run("verify-audit", env=env)


@pytest.fixture(scope="module")
def loaded_demos(tmp_path_factory, schemas):
    found: dict[str, Loaded] = {}

    def get(backend):
        if backend not in found:
            directory = tmp_path_factory.mktemp(f"demo-{backend}")
            env = _base_env(directory)
            env["DATABASE_URL"] = f"sqlite:///{directory / 'demo.db'}" if backend == "sqlite" \
                else schemas.fresh("clidemo")
            found[backend] = Loaded(env)
        return found[backend]

    return get


@pytest.fixture
def demo_env(tmp_path, backend, loaded_demos):
    """A database holding the demo. On SQLite each test gets a copy of its own; on PostgreSQL
    the tests share the module's one, and each leaves it as it found it or adds only what no
    other test looks at."""
    loaded = loaded_demos(backend)
    if backend != "sqlite":
        return dict(loaded.env)
    source = Path(loaded.env["DATABASE_URL"].removeprefix("sqlite:///"))
    shutil.copyfile(source, tmp_path / "cli.db")
    return _base_env(tmp_path) | {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}


def test_help_lists_every_command():
    done = subprocess.run([sys.executable, "-m", "app", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for command in COMMANDS:
        assert command in done.stdout


def test_migrate_is_idempotent_and_demo_loads_once(backend, loaded_demos):
    loaded = loaded_demos(backend)
    first, second = loaded.migrations
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "revision" in second.stdout
    demo = loaded.demo
    assert demo.returncode == 0 and "Demo organisation loaded." in demo.stdout, demo.stderr
    assert "bithu" in demo.stdout and "chibo-demo-2026" in demo.stdout
    assert "already present" in loaded.again.stdout
    # The demo raised its flags as it marked the rosters: a recheck finds nothing to change,
    # and the audit log it wrote verifies.
    flags = loaded.flags
    assert flags.returncode == 0 and "0 raised, 0 lowered" in flags.stdout, flags.stdout + flags.stderr
    verified = loaded.verified
    assert verified.returncode == 0 and "Audit log intact:" in verified.stdout, verified.stdout + verified.stderr


def test_rebuild_aggregates_finds_and_mends_writes_around_the_application(demo_env):
    """The demo, written through the domain, leaves the audit's cell-month figures equal to a
    recomputation; a roster line changed by SQL makes ``--check`` fail (exit 1) until
    ``rebuild-aggregates`` recomputes them."""
    from sqlalchemy import text

    from app.db import make_engine

    env = demo_env
    check = run("rebuild-aggregates", "--check", env=env)
    assert check.returncode == 0 and "up to date" in check.stdout, check.stdout + check.stderr
    engine = make_engine(env["DATABASE_URL"])
    changed = ("SELECT id, status, mode, excused FROM attendance WHERE id = "
               "(SELECT MIN(id) FROM attendance WHERE status = 'present' AND expected = :yes)")
    with engine.begin() as conn:
        line, *was = conn.execute(text(changed), {"yes": True}).one()
        conn.execute(text("UPDATE attendance SET status = 'absent', mode = NULL, excused = :no WHERE id = :id"),
                     {"no": False, "id": line})
    try:
        check = run("rebuild-aggregates", "--check", env=env)
        assert check.returncode == 1 and "DIFFER in 1 row(s)" in check.stdout, check.stdout + check.stderr
        rebuilt = run("rebuild-aggregates", env=env)
        assert rebuilt.returncode == 0 and "rebuilt" in rebuilt.stdout, rebuilt.stdout + rebuilt.stderr
        assert run("rebuild-aggregates", "--check", env=env).returncode == 0
    finally:  # the PostgreSQL demo is shared by this module's tests
        with engine.begin() as conn:
            conn.execute(text("UPDATE attendance SET status = :s, mode = :m, excused = :e WHERE id = :id"),
                         {"id": line, "s": was[0], "m": was[1], "e": was[2]})
        engine.dispose()
        assert run("rebuild-aggregates", env=env).returncode == 0


def test_demo_reset_starts_the_demo_over(demo_env, backend):
    """`python -m app demo --reset` (what `scripts/demo --reset` runs) throws away what was
    changed since and loads the demo as new; on PostgreSQL it refuses and changes nothing."""
    from sqlalchemy import create_engine, text

    env = demo_env
    engine = create_engine(env["DATABASE_URL"])
    with engine.begin() as conn:
        original = conn.execute(text("SELECT display_name FROM accounts WHERE username = 'bithu'")).scalar_one()
        conn.execute(text("UPDATE accounts SET display_name = 'Đã sửa' WHERE username = 'bithu'"))
    engine.dispose()  # a pooled SQLite connection would keep reading the deleted file
    reset = run("demo", "--reset", env=env)
    with engine.connect() as conn:
        name = conn.execute(text("SELECT display_name FROM accounts WHERE username = 'bithu'")).scalar_one()
    if backend == "sqlite":
        assert reset.returncode == 0 and "Demo organisation loaded." in reset.stdout, reset.stderr
        assert name == original
    else:
        assert reset.returncode == 2 and "only starts over an SQLite" in reset.stderr
        assert name == "Đã sửa"
        with engine.begin() as conn:
            conn.execute(text("UPDATE accounts SET display_name = :n WHERE username = 'bithu'"), {"n": original})
    engine.dispose()


def test_notices_job_once(demo_env):
    done = run("notices", env=demo_env)
    # No SMTP server configured: in-app notices are created, e-mail waits in the outbox.
    assert done.returncode == 0 and "Notices created:" in done.stdout and "e-mails sent: 0" in done.stdout


def test_create_account(demo_env):
    env = demo_env
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


def test_serve_answers_health_and_login(demo_env):
    env = demo_env
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
