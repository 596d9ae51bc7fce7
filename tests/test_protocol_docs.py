"""docs/protocol.md documents every message the server accepts or sends, and nothing else."""

import re
from pathlib import Path

from realtime.protocol import CLIENT_MESSAGES, SERVER_MESSAGES

DOC = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_text()


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
