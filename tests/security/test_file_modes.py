"""Finding 12.10: the SQLite file and DATA_DIR are private to the service's user.

They were world-readable (0644 / 0755): any local account could copy every member's record.
"""

import stat

from starlette.testclient import TestClient

from app.config import Settings
from app.factory import create_app
from app.migrate import migrate


def mode(path) -> int:  # type: ignore[no-untyped-def]
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_data_dir_and_database_are_private(tmp_path):
    data = tmp_path / "var"
    settings = Settings.from_env({}, DATA_DIR=str(data), LOG_REQUESTS=False, NOTICE_INTERVAL=0)
    app = create_app(settings)
    migrate(app.state.db.engine)
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        assert c.get("/healthz").json()["status"] == "ok"
        c.get("/login")
        assert mode(data) == 0o700
        assert mode(data / "chibo.db") == 0o600
        assert mode(data / "secret_key") == 0o600
        wal = data / "chibo.db-wal"
        assert not wal.exists() or mode(wal) == 0o600


def test_an_existing_world_readable_data_dir_is_made_private(tmp_path):
    data = tmp_path / "var"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    db = data / "chibo.db"
    db.touch()
    db.chmod(0o644)
    settings = Settings.from_env({}, DATA_DIR=str(data), LOG_REQUESTS=False, NOTICE_INTERVAL=0)
    app = create_app(settings)
    assert mode(data) == 0o700 and mode(db) == 0o600
    app.state.db.dispose()
