"""Render the app's icons (favicon.ico and the web app manifest's PNGs) from
static/icons/icon.svg with headless Chromium:

    python -m scripts.icons

The PNGs are committed; run this again only when the SVG changes. favicon.ico holds one
32×32 PNG (the ICO container has allowed PNG images since Windows Vista; every browser reads it).
"""

from __future__ import annotations

import struct
from pathlib import Path

from scripts.screenshots import CHROMIUM, CHROMIUM_ARGS

ICONS = Path(__file__).resolve().parent.parent / "static" / "icons"
SIZES = {"icon-192.png": 192, "icon-512.png": 512, "apple-touch-icon.png": 180, "favicon-32.png": 32}


def ico_from_png(png: bytes, size: int) -> bytes:
    """An ICO file with a single PNG image."""
    header = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(png), 6 + 16)
    return header + entry + png


def main() -> None:
    from playwright.sync_api import sync_playwright

    svg = (ICONS / "icon.svg").read_text()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for name, size in SIZES.items():
            page = browser.new_page(viewport={"width": size, "height": size})
            page.set_content(f"<style>html,body{{margin:0;background:transparent}}svg{{display:block;width:{size}px;"
                             f"height:{size}px}}</style>{svg}")
            page.screenshot(path=str(ICONS / name), omit_background=True)
            page.close()
        browser.close()
    small = ICONS / "favicon-32.png"
    (ICONS / "favicon.ico").write_bytes(ico_from_png(small.read_bytes(), 32))
    small.unlink()


if __name__ == "__main__":
    main()
