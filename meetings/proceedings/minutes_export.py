"""Adopted minutes as DOCX and PDF, in the layout of a party document (Hướng dẫn 36-HD/VPTW,
03/4/2018): upper left the superior organisation and "CHI BỘ …", upper right "ĐẢNG CỘNG SẢN
VIỆT NAM" with the place-and-date line below it, the title, the body, and the minute-taker's
and chair's signature blocks.

Both are made from a ``MinutesVersion``'s frozen content, never from live data, so an export
always shows exactly what was adopted (its hash is printed at the foot). The PDF embeds a
font with Vietnamese glyphs: the first of Liberation Serif (metric-compatible with Times New
Roman, the font HD 36 names), DejaVu Serif and Roboto (from the ``font-roboto`` package, always
installed) that really has every Vietnamese letter — older Liberation builds lack them.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import font_roboto
from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Cm, Pt
from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from .minutes import MinutesVersion

if TYPE_CHECKING:
    from docx.table import _Cell

VOTE_KIND = {"open": "biểu quyết công khai", "secret": "bỏ phiếu kín"}


@dataclass(frozen=True)
class Paragraph:
    text: str
    style: str = "body"  # "body" | "heading" | "item" | "bullet"


def _when(iso: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(iso) if iso else None


def _place_name(supervisor: str) -> str:
    """ "Đảng ủy xã Cam Lộ" → "Cam Lộ": the place written before the date."""
    return re.sub(r"^(Đảng ủy|Đảng bộ|Huyện ủy|Thành ủy|Thị ủy|Tỉnh ủy)\s+(xã|phường|thị trấn|đặc khu)?\s*", "",
                  supervisor, flags=re.IGNORECASE).strip() or supervisor


def _superior_heading(supervisor: str) -> str:
    """The organisation line above the cell: "Đảng ủy xã Cam Lộ" → "ĐẢNG BỘ XÃ CAM LỘ"."""
    name = re.sub(r"^Đảng ủy", "Đảng bộ", supervisor.strip())
    return name.upper()


def header(content: dict[str, Any]) -> dict[str, str]:
    org = content["organisation"]
    started = _when(content["meeting"]["started_at"])
    date_line = (f"{_place_name(org['supervisor'] or org['cell'])}, ngày {started.day:02d} tháng {started.month:02d} "
                 f"năm {started.year}") if started else ""
    kind = content["meeting"]["kind"]
    title_kind = {
        "regular": "SINH HOẠT CHI BỘ THƯỜNG KỲ",
        "thematic": "SINH HOẠT CHI BỘ CHUYÊN ĐỀ",
        "extraordinary": "HỌP CHI BỘ BẤT THƯỜNG",
        "committee": "HỌP CHI ỦY",
    }.get(kind, "SINH HOẠT CHI BỘ")
    if kind == "regular" and content["meeting"].get("combined_thematic"):
        title_kind = "SINH HOẠT CHI BỘ THƯỜNG KỲ KẾT HỢP CHUYÊN ĐỀ"
    month = f"THÁNG {started.month} NĂM {started.year}" if started else ""
    return {
        "superior": _superior_heading(org["supervisor"]) if org["supervisor"] else "",
        "cell": org["cell"].upper(),
        "party": "ĐẢNG CỘNG SẢN VIỆT NAM",
        "date_line": date_line,
        "title": "BIÊN BẢN",
        "subtitle": f"{title_kind} {month}".strip(),
    }


def body(content: dict[str, Any]) -> list[Paragraph]:
    """The text of the minutes, paragraph by paragraph (shared by DOCX and PDF)."""
    m = content["meeting"]
    a = content["attendance"]
    started, ended = _when(m["started_at"]), _when(m["ended_at"])
    out: list[Paragraph] = []
    if started:
        out.append(Paragraph(f"Thời gian: bắt đầu lúc {started.hour} giờ {started.minute:02d} phút, "
                             f"ngày {started:%d/%m/%Y}."))
    out.append(Paragraph(f"Địa điểm: {content['place'] or '…'}."))
    if m.get("topic"):
        out.append(Paragraph(f"Chuyên đề: {m['topic']}."))
    out.append(Paragraph(f"Chủ trì: đồng chí {content['chair']}. Thư ký: đồng chí {content['taker']}."))
    out.append(Paragraph(
        f"Tổng số đảng viên của chi bộ: {a['total']} đồng chí (chính thức: {a['official']}, dự bị: {a['probationary']}, "
        f"sinh hoạt tạm thời: {a['attached']}); trong đó miễn công tác và sinh hoạt đảng: {a['exempt']}, "
        f"giới thiệu sinh hoạt tạm thời đi nơi khác: {a['transferred_out']}."))
    out.append(Paragraph(
        f"Có mặt: {a['present']} đồng chí (chính thức: {a['present_official']}, dự bị: {a['present_probationary']}, "
        f"sinh hoạt tạm thời: {a['present_attached']}; dự trực tiếp: {a['present_in_person']}, "
        f"dự trực tuyến: {a['present_online']})."))
    excused = a["absent_excused"]
    out.append(Paragraph(f"Vắng mặt có lý do: {len(excused)} đồng chí" + (
        ": " + "; ".join(f"{name} ({reason})" for name, reason in excused) + "." if excused else ".")))
    unexcused = a["absent_unexcused"]
    out.append(Paragraph(f"Vắng mặt không có lý do: {len(unexcused)} đồng chí" + (
        ": " + ", ".join(unexcused) + "." if unexcused else ".")))
    if content.get("guests"):
        out.append(Paragraph(f"Khách mời: {content['guests']}."))
    out.append(Paragraph("NỘI DUNG", "heading"))
    for index, item in enumerate(content["items"], start=1):
        out.append(Paragraph(f"{index}. {item['title'] or 'Nội dung'}", "item"))
        if item.get("documents"):
            out.append(Paragraph(f"Tài liệu: {item['documents']}"))
        if item.get("summary"):
            out.extend(Paragraph(line) for line in item["summary"].split("\n") if line.strip())
        if item.get("opinions"):
            out.append(Paragraph("Ý kiến phát biểu:"))
            for opinion in item["opinions"]:
                out.append(Paragraph(f"Đồng chí {opinion['speaker']}: {opinion['text']}", "bullet"))
        if item.get("conclusion"):
            out.append(Paragraph(f"Kết luận của chủ trì: {item['conclusion']}"))
    if content["votes"]:
        out.append(Paragraph("KẾT QUẢ BIỂU QUYẾT", "heading"))
        for vote in content["votes"]:
            d = vote["denominator"] or 0
            pct = f" ({100 * vote['agree'] / d:.1f}%)" if d else ""
            out.append(Paragraph(
                f"{vote['title']} ({VOTE_KIND.get(vote['kind'], vote['kind'])}): tán thành {vote['agree']}/{d}{pct}, "
                f"không tán thành {vote['disagree']}, không biểu quyết {vote['abstain']}; cần ít nhất "
                f"{vote['votes_needed']} phiếu tán thành. Kết quả: "
                f"{'THÔNG QUA' if vote['passed'] else 'KHÔNG THÔNG QUA'}.", "bullet"))
    if content.get("resolution"):
        out.append(Paragraph("NGHỊ QUYẾT / KẾT LUẬN", "heading"))
        out.extend(Paragraph(line) for line in content["resolution"].split("\n") if line.strip())
    if content.get("other"):
        out.extend(Paragraph(line) for line in content["other"].split("\n") if line.strip())
    closing = "Biên bản đã được đọc lại cho chi bộ nghe và thông qua."
    if ended:
        closing += f" Cuộc họp kết thúc lúc {ended.hour} giờ {ended.minute:02d} phút cùng ngày."
    out.append(Paragraph(closing))
    return out


def footer(version: MinutesVersion) -> str:
    return f"Biên bản phiên bản {version.version}, mã kiểm tra SHA-256: {version.content_hash}"


# --------------------------------------------------------------------------- DOCX


def to_docx(version: MinutesVersion) -> bytes:
    content = version.content
    head = header(content)
    doc = Document()
    section = doc.sections[0]
    section.page_height, section.page_width = Cm(29.7), Cm(21.0)
    section.top_margin, section.bottom_margin = Cm(2.0), Cm(2.0)
    section.left_margin, section.right_margin = Cm(3.0), Cm(1.5)
    normal = doc.styles["Normal"]
    normal.font.name = "Times New Roman"
    normal.font.size = Pt(14)

    def centered(cell: _Cell, text: str, *, bold: bool = False, italic: bool = False, underline: bool = False,
                 size: int = 13) -> None:
        paragraph = cell.add_paragraph() if cell.paragraphs[0].text else cell.paragraphs[0]
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        run = paragraph.add_run(text)
        run.bold, run.italic, run.underline = bold, italic, underline
        run.font.size = Pt(size)

    table = doc.add_table(rows=1, cols=2)
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    left, right = table.rows[0].cells
    if head["superior"]:
        centered(left, head["superior"], size=13)
    centered(left, head["cell"], bold=True, size=13)
    centered(left, "*", size=13)
    centered(right, head["party"], bold=True, underline=True, size=14)
    centered(right, head["date_line"], italic=True, size=13)

    for text, size in ((head["title"], 15), (head["subtitle"], 14)):
        paragraph = doc.add_paragraph()
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        run = paragraph.add_run(text)
        run.bold = True
        run.font.size = Pt(size)

    for item in body(content):
        paragraph = doc.add_paragraph()
        paragraph.paragraph_format.first_line_indent = Cm(1.0) if item.style in ("body",) else None
        if item.style == "bullet":
            paragraph.paragraph_format.left_indent = Cm(1.0)
            item = Paragraph("- " + item.text, item.style)
        run = paragraph.add_run(item.text)
        run.bold = item.style in ("heading", "item")

    signatures = doc.add_table(rows=1, cols=2)
    for cell, role, name in ((signatures.rows[0].cells[0], "THƯ KÝ", content["taker"]),
                             (signatures.rows[0].cells[1], "CHỦ TRÌ", content["chair"])):
        centered(cell, role, bold=True, size=14)
        centered(cell, "(Ký, ghi rõ họ tên)", italic=True, size=12)
        centered(cell, "\n\n", size=12)
        centered(cell, name or "", bold=True, size=14)
    note = doc.add_paragraph()
    run = note.add_run(footer(version))
    run.italic = True
    run.font.size = Pt(9)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


# --------------------------------------------------------------------------- PDF

FONT_CANDIDATES = [
    ("/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
     "/usr/share/fonts/truetype/liberation/LiberationSerif-Bold.ttf",
     "/usr/share/fonts/truetype/liberation/LiberationSerif-Italic.ttf"),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
     "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",
     "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Italic.ttf"),
]


VIETNAMESE_LETTERS = "ĐđĂăÂâÊêÔôƠơƯư" + "ẢẠẤẦẨẪẬẮẰẲẴẶẺẼẸẾỀỂỄỆỈỊỎỌỐỒỔỖỘỚỜỞỠỢỦỤỨỪỬỮỰỲỶỸỴÝ" + "ảạấầẩẫậắằẳẵặẻẽẹếềểễệỉịỏọốồổỗộớờởỡợủụứừửữựỳỷỹỵý"


def _covers_vietnamese(path: str) -> bool:
    with TTFont(path, lazy=True) as font:
        cmap = font.getBestCmap()
        return all(ord(ch) in cmap for ch in VIETNAMESE_LETTERS)


@functools.cache
def pdf_fonts() -> tuple[str, str, str]:
    directory = Path(font_roboto.font_directory)
    roboto = (str(directory / "Roboto-Regular.ttf"), str(directory / "Roboto-Bold.ttf"),
              str(directory / "Roboto-Italic.ttf"))
    for candidate in (*FONT_CANDIDATES, roboto):
        if all(Path(p).exists() for p in candidate) and all(_covers_vietnamese(p) for p in candidate):
            return candidate
    raise RuntimeError("no font with Vietnamese letters found for PDF export")


def to_pdf(version: MinutesVersion) -> bytes:
    content = version.content
    head = header(content)
    regular, bold, italic = pdf_fonts()
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_margins(left=30, top=20, right=15)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_font("Doc", "", regular)
    pdf.add_font("Doc", "B", bold)
    pdf.add_font("Doc", "I", italic)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    half = width / 2
    top = pdf.get_y()

    def line(text: str, style: str, size: float, x: float, w: float, *, underline: bool = False) -> None:
        pdf.set_font("Doc", style + ("U" if underline else ""), size)
        pdf.set_x(x)
        pdf.multi_cell(w, 6, text, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    left_x = pdf.l_margin
    if head["superior"]:
        line(head["superior"], "", 12, left_x, half - 5)
    line(head["cell"], "B", 12, left_x, half - 5)
    line("*", "", 12, left_x, half - 5)
    left_bottom = pdf.get_y()
    pdf.set_y(top)
    line(head["party"], "B", 13, left_x + half, half, underline=True)
    line(head["date_line"], "I", 12, left_x + half, half)
    pdf.set_y(max(left_bottom, pdf.get_y()) + 6)
    line(head["title"], "B", 15, left_x, width)
    line(head["subtitle"], "B", 13, left_x, width)
    pdf.ln(4)
    for item in body(content):
        if item.style == "heading":
            pdf.ln(2)
            pdf.set_font("Doc", "B", 13)
            pdf.multi_cell(width, 6.5, item.text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        elif item.style == "item":
            pdf.set_font("Doc", "B", 13)
            pdf.multi_cell(width, 6.5, item.text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        elif item.style == "bullet":
            pdf.set_font("Doc", "", 13)
            pdf.set_x(pdf.l_margin + 8)
            pdf.multi_cell(width - 8, 6.5, "- " + item.text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        else:
            pdf.set_font("Doc", "", 13)
            pdf.multi_cell(width, 6.5, "      " + item.text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(8)
    if pdf.get_y() > pdf.h - 70:
        pdf.add_page()
    top = pdf.get_y()
    for offset, role, name in ((0, "THƯ KÝ", content["taker"]), (half, "CHỦ TRÌ", content["chair"])):
        pdf.set_y(top)
        line(role, "B", 13, left_x + offset, half)
        line("(Ký, ghi rõ họ tên)", "I", 11, left_x + offset, half)
        pdf.ln(22)
        line(name or "", "B", 13, left_x + offset, half)
    pdf.ln(10)
    pdf.set_font("Doc", "I", 8)
    pdf.multi_cell(width, 4, footer(version), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
