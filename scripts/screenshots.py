"""Take phone-sized screenshots of the main pages with headless Chromium.

    python -m scripts.screenshots --base-url http://127.0.0.1:8000 --out var/screenshots

Logs in with a demo account and saves PNGs of the login page and the pages asked for at a
360-px-wide viewport, e.g. ``--page schedule=/cells/4/schedule --page meeting=/meetings/9
--page compliance=/cells/4/compliance``. For each page it reports the document's scroll width, so
that horizontal overflow (the usual mobile layout bug) is caught. Used by
tests/browser/test_screenshots.py.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
#: Flags that keep Chromium quiet on a closed network (shared/TESTING-REALTIME.md).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--disable-default-apps",
]
#: Added for pages that use the camera and microphone: Chromium's fake devices, and WebRTC
#: over loopback (which Chromium otherwise leaves out of ICE).
MEDIA_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
]
PHONE = {"width": 360, "height": 740}


@dataclass
class Shot:
    name: str
    url: str
    path: str
    scroll_width: int
    viewport_width: int
    text: str


def take(base_url: str, out: Path, username: str, password: str, pages: list[tuple[str, str]]) -> list[Shot]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    shots: list[Shot] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=PHONE, device_scale_factor=2, locale="vi-VN",
                                      timezone_id="Asia/Ho_Chi_Minh")
        page = context.new_page()

        def snap(name: str) -> None:
            path = out / f"{name}.png"
            page.screenshot(path=str(path), full_page=True)
            shots.append(Shot(
                name=name, url=page.url, path=str(path),
                scroll_width=page.evaluate("document.documentElement.scrollWidth"),
                viewport_width=page.evaluate("window.innerWidth"),
                text=page.inner_text("body"),
            ))

        page.goto(f"{base_url}/login")
        snap("login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        for name, path in pages:
            page.goto(f"{base_url}{path}")
            snap(name)
        browser.close()
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", default="var/screenshots")
    parser.add_argument("--username", default="bithu")
    parser.add_argument("--password", default="chibo-demo-2026")
    parser.add_argument("--page", action="append", default=[], metavar="NAME=PATH",
                        help="extra page to capture, e.g. roster=/cells/4")
    args = parser.parse_args()
    pages = [tuple(p.split("=", 1)) for p in args.page] or [("home", "/")]
    for shot in take(args.base_url, Path(args.out), args.username, args.password, pages):  # type: ignore[arg-type]
        print(json.dumps({k: v for k, v in asdict(shot).items() if k != "text"}, ensure_ascii=False))


if __name__ == "__main__":
    main()
