"""Render adopted minutes to DOCX, PDF and PNG pages, to look at them.

    python -m scripts.render_minutes --meeting 1 [--version 2] --out var/minutes

Reads DATABASE_URL like the app. The PNGs come from the PDF through poppler's pdftoppm
(Debian package poppler-utils); tests/test_minutes_export.py uses the same function.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from meetings.proceedings.minutes import MinutesVersion
from meetings.proceedings.minutes_export import to_docx, to_pdf


def render(version: MinutesVersion, out: Path, stem: str = "bien-ban") -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    docx_path = out / f"{stem}.docx"
    pdf_path = out / f"{stem}.pdf"
    docx_path.write_bytes(to_docx(version))
    pdf_path.write_bytes(to_pdf(version))
    subprocess.run(["pdftoppm", "-png", "-r", "80", str(pdf_path), str(out / stem)], check=True)
    pages = sorted(out.glob(f"{stem}-*.png"))
    return {"docx": docx_path, "pdf": pdf_path, **{f"page{i + 1}": p for i, p in enumerate(pages)}}


def main() -> None:
    from app.config import Settings
    from app.db import Database, make_engine
    from meetings.proceedings.minutes import get_version, latest_version

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meeting", type=int, required=True)
    parser.add_argument("--version", type=int)
    parser.add_argument("--out", default="var/minutes")
    args = parser.parse_args()
    db = Database(make_engine(Settings.from_env().database_url))
    with db.session() as session:
        version = (get_version(session, args.meeting, args.version) if args.version
                   else latest_version(session, args.meeting))
        if version is None:
            raise SystemExit("This meeting has no adopted minutes.")
        for kind, path in render(version, Path(args.out), f"bien-ban-{args.meeting}-v{version.version}").items():
            print(f"{kind}: {path}")


if __name__ == "__main__":
    main()
