"""Settings as data: each setting has a name, a default and a help text.

The table drives parsing from environment variables, ``python -m app settings`` and
``docs/settings.md`` (a test checks that the document lists every setting).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str
    #: Never printed (``python -m app settings`` shows only whether it is set).
    secret: bool = False


def _bool(value: str) -> bool:
    if value.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if value.strip().lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


ICE_TRANSPORT_POLICIES = ("all", "relay")


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError(f"must be a positive number: {value!r}")
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError(f"must be a positive number: {value!r}")
    return number


def _ipv4(value: str) -> str:
    address = value.strip()
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        raise ValueError(f"not an IPv4 address: {value!r}") from None
    return address


def _ice_urls(value: str) -> list[str]:
    urls = _list(value)
    for url in urls:
        problem = ice_url_problem(url)
        if problem:
            raise ValueError(f"{url!r}: {problem}")
    return urls


def _ice_policy(value: str) -> str:
    policy = value.strip().lower()
    if policy not in ICE_TRANSPORT_POLICIES:
        raise ValueError(f"must be one of {', '.join(ICE_TRANSPORT_POLICIES)}: {value!r}")
    return policy


def ice_url_problem(url: str) -> str | None:
    """Why a STUN/TURN URL (RFC 7064/7065) would not work in browsers and aiortc, or None."""
    scheme, _, rest = url.partition(":")
    if scheme not in ("stun", "turn", "turns") or not rest or rest.startswith("//"):
        return "expected stun:host[:port] or turn:host[:port][?transport=udp|tcp]"
    address, _, query = rest.partition("?")
    if query:
        if scheme.startswith("stun"):
            return "a STUN URL takes no ?transport"
        if query not in ("transport=udp", "transport=tcp"):
            return "only ?transport=udp or ?transport=tcp"
    host, _, port = address.rpartition(":") if address.count(":") == 1 else (address, "", "")
    if not host or (port and not port.isdigit()):
        return "bad host or port"
    return None


def make_private(path: Path, mode: int) -> None:
    """Take group and other permissions off a file or directory this user owns."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(mode)


SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", "", "Database URL. Default: an SQLite file under DATA_DIR. "
            "Plain URLs such as sqlite:///path/app.db and postgresql://host/db are accepted."),
    Setting("DATA_DIR", "var", "Directory for the SQLite file, the generated secret key and uploads."),
    Setting("SECRET_KEY", "", "Key that signs session cookies and join tokens. Default: generated "
            "once and kept in DATA_DIR/secret_key.", secret=True),
    Setting("PUBLIC_URL", "http://127.0.0.1:8000", "The address users open; used in e-mails, "
            "calendar feeds and the WebSocket origin check."),
    Setting("ALLOWED_ORIGINS", [], "Extra origins allowed to open meeting WebSockets (comma-separated).", _list),
    Setting("SESSION_MAX_AGE", 7 * 24 * 3600, "Absolute lifetime of a login session in seconds: after it, "
            "the session ends however active it is.", _positive_int),
    Setting("SESSION_IDLE_TIMEOUT", 4 * 3600, "A login session unused for this many seconds ends (an open "
            "meeting room counts as use).", _positive_int),
    Setting("COOKIE_SECURE", False, "Send cookies over HTTPS only (turn on behind TLS).", _bool),
    Setting("LOG_LEVEL", "INFO", "Logging level (DEBUG, INFO, WARNING)."),
    Setting("LOG_REQUESTS", True, "Write one structured JSON log line per HTTP request.", _bool),
    Setting("ICE_SERVERS", [], "STUN/TURN URLs for WebRTC, comma-separated (e.g. "
            "turn:turn.example.vn:3478?transport=udp). Empty: host candidates only (same network). "
            "TURN URLs need TURN_SECRET.", _ice_urls),
    Setting("TURN_SECRET", "", "Shared secret of the TURN server (coturn use-auth-secret); "
            "credentials are issued per participant with an expiry.", secret=True),
    Setting("TURN_TTL", 6 * 3600, "Lifetime of issued TURN credentials in seconds; new credentials "
            "are sent to each participant before theirs expire.", _positive_int),
    Setting("ICE_TRANSPORT_POLICY", "all", "'all' (default) or 'relay': with 'relay' browsers and "
            "aiortc peers send media only through the TURN server (needs a TURN URL).", _ice_policy),
    Setting("REDIS_URL", "", "Redis for several server processes (e.g. redis://127.0.0.1:6379/0). "
            "Empty: one process, rooms in memory."),
    Setting("REDIS_PREFIX", "chibo", "Prefix of every Redis key and channel, so that several sites "
            "(or test runs) can share one Redis."),
    Setting("RELAY_PUBLIC_IP", "", "The public IPv4 address members reach this machine at when it sits behind a "
            "1:1 NAT (a cloud machine's elastic/floating IP): the relay advertises its host candidates at this "
            "address, same ports (as Janus's nat_1_1_mapping). Empty: the machine's own addresses.", _ipv4),
    Setting("RELAY_KEEP_HOST_CANDIDATES", False, "With RELAY_PUBLIC_IP: advertise the machine's private "
            "addresses too (members on the same network as the machine).", _bool),
    Setting("RELAY_VIDEO_SENDERS", 4, "A meeting room moves from the peer-to-peer mesh to the server "
            "relay when more participants than this send video (0: relay from the first camera).", int),
    Setting("ROOM_GRACE_SECONDS", 20.0, "How long a dropped participant stays in the room, "
            "shown as reconnecting, before counting as gone.", float),
    Setting("ROOM_HEARTBEAT_SECONDS", 10.0, "How often the room records that its connected participants are "
            "still there; after a crash their presence ends at the last record, so the time the server was "
            "down is never counted as attendance.", float),
    Setting("SMTP_HOST", "", "SMTP server for notice e-mails. Empty: no e-mail is sent (in-app notices only)."),
    Setting("SMTP_PORT", 25, "SMTP server port.", int),
    Setting("SMTP_USERNAME", "", "SMTP login (empty: no authentication)."),
    Setting("SMTP_PASSWORD", "", "SMTP password.", secret=True),
    Setting("SMTP_STARTTLS", False, "Upgrade the SMTP connection with STARTTLS.", _bool),
    Setting("MAIL_FROM", "Chi bo truc tuyen <no-reply@localhost>", "Sender address of notice e-mails."),
    Setting("NOTICE_REMINDERS", "3d,2h", "Reminders before each meeting, comma-separated (d, h, m)."),
    Setting("NOTICE_HORIZON_DAYS", 30, "A meeting is announced to its members this many days ahead.", int),
    Setting("NOTICE_INTERVAL", 60, "Seconds between runs of the notice job; 0 turns the job off "
            "(then run it with `python -m app notices`).", int),
    Setting("UPLOAD_MAX_BYTES", 10 * 1024 * 1024, "Largest uploaded file accepted (meeting documents, signed "
            "self-assessments), in bytes.", int),
    Setting("REQUEST_MAX_BYTES", 1024 * 1024, "Largest request body of a logged-in user outside the upload "
            "forms, in bytes; larger gets 413 before it is read.", _positive_int),
    Setting("ANONYMOUS_MAX_BYTES", 16 * 1024, "Largest request body without a login session (the login "
            "form), in bytes; larger gets 413 before it is read.", _positive_int),
    Setting("REQUEST_HEADER_TIMEOUT", 10.0, "Seconds a connection may take to send a request's head "
            "(line and headers); slower connections are closed.", _positive_float),
    Setting("REQUEST_BODY_TIMEOUT", 15.0, "Longest silence while a request body arrives, in seconds; "
            "also the grace before REQUEST_BODY_MIN_RATE applies. Slower bodies get 408.", _positive_float),
    Setting("REQUEST_BODY_MIN_RATE", 1024, "After REQUEST_BODY_TIMEOUT, a request body must average at "
            "least this many bytes a second (a weak 2G link sends ten times more).", _positive_int),
    Setting("ABSENCE_LATE_HOURS", 24, "An absence request filed later than this before the meeting is marked late.",
            int),
)
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


def ice_settings_problem(values: Mapping[str, Any]) -> str | None:
    """Settings that would leave WebRTC unable to use the TURN server they name."""
    has_turn = any(str(u).startswith(("turn:", "turns:")) for u in values["ICE_SERVERS"])
    if has_turn and not values["TURN_SECRET"]:
        return "ICE_SERVERS lists a TURN server but TURN_SECRET is empty: no credentials could be issued"
    if values["ICE_TRANSPORT_POLICY"] == "relay" and not has_turn:
        return "ICE_TRANSPORT_POLICY=relay needs a turn: URL in ICE_SERVERS (and TURN_SECRET)"
    return None


@dataclass
class Settings:
    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = env.get(setting.name)
            if raw is None or raw == "":
                values[setting.name] = setting.default
            else:
                try:
                    values[setting.name] = setting.parse(raw)
                except ValueError as exc:
                    raise SystemExit(f"Invalid value for {setting.name}: {exc}") from None
        for name, value in overrides.items():
            if name not in SETTINGS_BY_NAME:
                raise KeyError(name)
            values[name] = value
        problem = ice_settings_problem(values)
        if problem:
            raise SystemExit(problem)
        return cls(values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name.upper()]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def data_dir(self) -> Path:
        """DATA_DIR, private to the service's user (0700): it holds the database, the secret
        key and members' documents (finding 12.10)."""
        path = Path(self.values["DATA_DIR"])
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        make_private(path, 0o700)
        return path

    @property
    def database_url(self) -> str:
        return self.values["DATABASE_URL"] or f"sqlite:///{self.data_dir / 'chibo.db'}"

    @property
    def secret_key(self) -> str:
        key = self.values["SECRET_KEY"]
        if key:
            return str(key)
        path = self.data_dir / "secret_key"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        key = path.read_text().strip()
        self.values["SECRET_KEY"] = key
        return key

    @property
    def served_over_https(self) -> bool:
        return bool(self.values["COOKIE_SECURE"]) or str(self.values["PUBLIC_URL"]).startswith("https://")

    @property
    def allowed_origins(self) -> set[str]:
        public = str(self.values["PUBLIC_URL"]).rstrip("/")
        return {public, *self.values["ALLOWED_ORIGINS"]}
