"""docs/protocol.md documents every message the server accepts or sends, every close code and
every envelope between processes, and nothing else; the room page speaks the same protocol."""

import dataclasses
import re
from pathlib import Path

from realtime.envelopes import COMMANDS, ENVELOPES
from realtime.protocol import CLIENT_MESSAGES, PROTOCOL_VERSION, SERVER_MESSAGES
from realtime.refusals import CLOSES, CloseCode

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "protocol.md").read_text()


def documented(section: str) -> set[str]:
    body = DOC.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^### `([a-z_]+)`$", body, flags=re.M))


def test_client_messages_match_the_document():
    assert documented("Client → server") == set(CLIENT_MESSAGES)


def test_server_messages_match_the_document():
    assert documented("Server → client") == set(SERVER_MESSAGES)


def test_error_codes_raised_in_code_are_documented():
    root = Path(__file__).resolve().parent.parent / "realtime"
    codes = set()
    for path in root.glob("*.py"):
        codes |= set(re.findall(r'ProtocolError\(\s*"([a-z_]+)"', path.read_text()))
        codes |= set(re.findall(r'Refusal\(\s*"([a-z_]+)"', path.read_text()))
        codes |= set(re.findall(r'Error\(code="([a-z_]+)"', path.read_text()))
    table = DOC.split("| Code | When |", 1)[1]
    missing = {c for c in codes if f"`{c}`" not in table}
    assert codes and not missing, missing


def close_code_table() -> dict[int, str]:
    body = DOC.split("| Close code | Meaning | Client behaviour |", 1)[1].split("\n\n", 1)[0]
    return {int(m[1]): m[2] for m in re.finditer(r"^\| (\d{4}) \| (.*?) \|", body, flags=re.M)}


def test_close_codes_match_the_document():
    assert set(close_code_table()) == {int(code) for code in CloseCode}


def test_realtime_closes_sockets_only_with_named_codes():
    """No bare close-code numbers: every close goes through ``CloseCode``."""
    bare = re.compile(r"close(?:_soon)?\(\s*(?:code\s*=\s*)?\d|WebSocketDisconnect\(\s*\d|\.get\(\"code\", \d")
    found = [f"{path.name}:{n}" for path in ROOT.joinpath("realtime").rglob("*.py")
             for n, line in enumerate(path.read_text().splitlines(), 1) if bare.search(line)]
    assert not found


def test_every_error_that_closes_a_socket_is_in_the_error_table():
    table = DOC.split("| Code | When |", 1)[1]
    assert {c for c in CLOSES if f"`{c}`" not in table} == set()


def room_js_handled() -> set[str]:
    source = (ROOT / "static" / "room" / "room.js").read_text()
    body = source.split("async handle(msg) {", 1)[1].split("\n  }\n", 1)[0]
    return set(re.findall(r'case "([a-z_]+)"', body))


def test_the_room_page_handles_exactly_the_server_messages():
    assert room_js_handled() == set(SERVER_MESSAGES)


def test_one_protocol_version_in_server_client_and_document():
    scripts = {path.name: path.read_text() for path in (ROOT / "static" / "room").glob("*.js")}
    versions = [(name, int(v)) for name, text in scripts.items()
                for v in re.findall(r"PROTOCOL_VERSION\s*=\s*(\d+)", text)]
    assert versions == [("signalling.js", PROTOCOL_VERSION)]
    assert 'version: PROTOCOL_VERSION' in scripts["signalling.js"]
    assert DOC.startswith(f"# Meeting-room protocol (version {PROTOCOL_VERSION})")


def envelope_table() -> dict[str, tuple[str, set[str], set[str]]]:
    """``op`` → (direction, field names, values named in parentheses)."""
    body = DOC.split("| `op` | Direction | Fields | Meaning |", 1)[1].split("\n\n", 1)[0]
    rows = {}
    for m in re.finditer(r"^\| `([a-z_]+)` \| ([^|]+?) \| ([^|]+?) \|", body, flags=re.M):
        fields = m[3]
        values = set(re.findall(r"`([a-z_]+)`", "".join(re.findall(r"\(([^)]*)\)", fields))))
        names = set(re.findall(r"`([a-z_]+)`", re.sub(r"\([^)]*\)", "", fields)))
        rows[m[1]] = (m[2], names, values)
    return rows


def test_envelopes_between_processes_match_the_document():
    table = envelope_table()
    assert set(table) == set(ENVELOPES)
    for op, cls in ENVELOPES.items():
        direction, names, values = table[op]
        assert direction == cls.DIRECTION, op
        assert names == {f.name for f in dataclasses.fields(cls)}, op
    assert table["command"][2] == set(COMMANDS)
