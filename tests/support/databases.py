"""Test databases: SQLite always; PostgreSQL too when DATABASE_URL points at one.

Each backend is migrated once per test session (SQLite into a template file that every test
copies; PostgreSQL into a schema of its own, so parallel runs never collide) and each test
starts from empty tables.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text

from app.db import Database, make_engine, normalise_url
from app.migrate import migrate
from meetings.models import Base


def postgres_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgresql", "postgres")) else None


def backends() -> list[str]:
    return ["sqlite", "postgresql"] if postgres_url() else ["sqlite"]


@dataclass
class SqliteTemplate:
    path: Path

    @classmethod
    def create(cls, directory: Path) -> SqliteTemplate:
        path = directory / "template.db"
        engine = make_engine(f"sqlite:///{path}")
        migrate(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        return cls(path)

    def fresh(self, directory: Path) -> Database:
        target = directory / "app.db"
        shutil.copyfile(self.path, target)
        return Database(make_engine(f"sqlite:///{target}"))


@dataclass
class PostgresSchema:
    url: str
    schema: str
    admin: Engine

    @classmethod
    def create(cls, url: str) -> PostgresSchema:
        schema = f"test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        admin = make_engine(url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        self = cls(url, schema, admin)
        engine = self.engine()
        migrate(engine)
        engine.dispose()
        return self

    def engine(self) -> Engine:
        return make_engine(self.url, connect_args={"options": f"-csearch_path={self.schema}"})

    def fresh(self) -> Database:
        engine = self.engine()
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        return Database(engine)

    def drop(self) -> None:
        with self.admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
        self.admin.dispose()

    @property
    def plain_url(self) -> str:
        return normalise_url(self.url)
