"""The documentation lists every setting and every CLI command (after Datasette's test_docs)."""

from pathlib import Path

from app.cli import build_parser
from app.config import SETTINGS

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented():
    doc = (ROOT / "docs" / "settings.md").read_text()
    documented = {line.split("`")[1] for line in doc.splitlines() if line.startswith("| `")}
    assert documented == {s.name for s in SETTINGS}


def test_every_cli_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name in commands:
        assert f"python -m app {name}" in readme, name


def test_readme_starts_with_the_two_commands():
    lines = [line for line in (ROOT / "README.md").read_text().splitlines() if line.strip()]
    assert lines[1] == "```sh"
    assert lines[2].startswith("./scripts/demo") and lines[3].startswith("./scripts/test")
    for script in ("scripts/demo", "scripts/test", ".ci/run"):
        assert (ROOT / script).stat().st_mode & 0o111, script


def test_the_map_of_the_house_names_every_part_of_the_domain():
    """docs/architecture.md and the README's Layout table list exactly the domain's parts and
    every module of each part."""
    parts = sorted(p.name for p in (ROOT / "meetings").iterdir() if (p / "__init__.py").exists())
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    for part in parts:
        assert f"`meetings/{part}`" in architecture, part
        assert f"`meetings/{part}/`" in layout, part
        for module in sorted((ROOT / "meetings" / part).glob("*.py")):
            if module.stem != "__init__":
                assert module.stem in architecture, f"{part}/{module.name} missing from docs/architecture.md"
    documented = {line.split("`meetings/")[1].split("`")[0].strip("/") for line in layout.splitlines()
                  if line.startswith("| `meetings/")}
    assert documented == set(parts)
