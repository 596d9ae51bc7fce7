"""Finding 12.5: request bodies are capped before they are read; slow requests are cut off.

A 1 GiB upload to /login used to be read in full (into temporary files) before login or CSRF
were checked, and 500 half-sent requests were still open after 45 s. These tests talk to a
real uvicorn server over raw sockets, as an attacker would, with short timeouts.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import time
from collections.abc import Iterator

import httpx2 as httpx
import pytest

from app.config import Settings
from app.factory import create_app
from tests.support.live import live_server
from tests.support.world import PASSWORD, add_meetings

GIB = 1024**3
CHUNK = b"\0" * 65536


@pytest.fixture
def site(tmp_path, database, world, clock) -> Iterator[str]:  # type: ignore[no-untyped-def]
    with database.session() as s:
        add_meetings(s, world, ("A",))
    settings = Settings.from_env({}, DATA_DIR=str(tmp_path / "var"), SECRET_KEY="k" * 32, LOG_REQUESTS=False,
                                 NOTICE_INTERVAL=0, REQUEST_HEADER_TIMEOUT=1.0, REQUEST_BODY_TIMEOUT=1.0,
                                 UPLOAD_MAX_BYTES=1024 * 1024)
    with live_server(create_app(settings, database=database, clock=clock)) as base:
        yield base


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    return sock


def head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def stream_until_answered(sock: socket.socket, total: int, chunked: bool = False) -> tuple[int, bytes]:
    """Send up to ``total`` body bytes in 64 KiB pieces (nothing is allocated but one piece)
    until the server answers or closes; returns what was sent and what came back."""
    sent = 0
    answer = b""
    piece = (b"10000\r\n" + CHUNK + b"\r\n") if chunked else CHUNK
    sock.settimeout(2)
    deadline = time.monotonic() + 60
    while sent < total and time.monotonic() < deadline:
        readable, writable, _ = select.select([sock], [sock], [], 1)
        if readable:
            break
        if writable:
            try:
                sock.sendall(piece)
            except TimeoutError:
                continue  # the server stopped reading: its answer is on the way
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
    sock.settimeout(10)
    with contextlib.suppress(OSError):
        while b"</html>" not in answer:
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    return sent, answer


def closed(sock: socket.socket) -> bool:
    """The server closed the connection (end of stream, or a reset)."""
    sock.settimeout(10)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def session_cookie(base: str, username: str) -> str:
    with httpx.Client(base_url=base) as client:
        token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
        r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
        assert r.status_code == 303
        return f"chibo_session={client.cookies['chibo_session']}"


def test_a_gigabyte_to_login_is_refused_unread(site):
    sock = connect(site)
    sock.sendall(head("/login", {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(GIB)}))
    sent, answer = stream_until_answered(sock, GIB)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert "quá lớn".encode() in answer and b"connection: close" in answer.lower()
    assert sent < 32 * 1024 * 1024, f"{sent} bytes went out before the refusal"
    assert closed(sock)
    sock.close()


def test_a_chunked_upload_past_the_limit_is_cut_off(site, world):
    cookie = session_cookie(site, "sec_a")
    sock = connect(site)
    sock.sendall(head(f"/meetings/{world.meetings['A']}/documents",
                      {"Cookie": cookie, "Content-Type": "multipart/form-data; boundary=x",
                       "Transfer-Encoding": "chunked"}))
    part = (b'--x\r\nContent-Disposition: form-data; name="file"; filename="huge.pdf"\r\n'
            b"Content-Type: application/pdf\r\n\r\n%PDF-1.4\n")
    sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))  # a well-formed file part that never ends
    sent, answer = stream_until_answered(sock, GIB, chunked=True)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 64 * 1024 * 1024, f"{sent} bytes went out before the refusal"
    assert closed(sock)
    sock.close()


def test_bodies_are_capped_per_route_and_login(site, world):
    cookie = session_cookie(site, "sec_a")
    with httpx.Client(base_url=site, headers={"Cookie": cookie}) as client:
        # A logged-in form elsewhere: 1 MiB at most; anonymous: 16 KiB.
        big = client.post(f"/meetings/{world.meetings['A']}/absence", content=b"reason=" + b"x" * (2 * 1024 * 1024),
                          headers={"content-type": "application/x-www-form-urlencoded"})
        assert big.status_code == 413 and "Dữ liệu gửi lên quá lớn" in big.text
    with httpx.Client(base_url=site) as anonymous:
        r = anonymous.post("/login", content=b"username=" + b"x" * 20_000,
                           headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 413
        assert anonymous.get("/login").status_code == 200


def test_half_sent_requests_are_closed(site):
    heads = [connect(site) for _ in range(40)]
    for sock in heads:
        sock.sendall(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")  # and nothing more
    bodies = [connect(site) for _ in range(40)]
    for sock in bodies:
        sock.sendall(head("/login", {"Content-Type": "application/x-www-form-urlencoded",
                                     "Content-Length": "2000"}) + b"username=half")
    started = time.monotonic()
    for sock in heads:
        assert closed(sock)
    for sock in bodies:
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
        assert "quá chậm".encode() in answer or closed(sock)
    # Timeouts of 1 s here (10 s and 15 s by default): all gone well within the bound.
    assert time.monotonic() - started < 15
    for sock in heads + bodies:
        sock.close()


def test_a_dripping_body_is_cut_off(site):
    sock = connect(site)
    sock.sendall(head("/login", {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "5000"}))
    answer = b""
    sock.settimeout(0.3)
    for _ in range(60):  # one byte every 0.3 s: never silent for 1 s, far below 1 KiB/s
        try:
            sock.send(b"x")
        except (BrokenPipeError, ConnectionResetError):
            break
        with contextlib.suppress(TimeoutError):
            answer += sock.recv(65536)
        if answer:
            break
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    sock.close()
