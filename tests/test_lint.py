"""The same gate developers run: ruff over the whole tree, mypy over the packages."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "meetings", "realtime")


def test_ruff_is_clean():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--quiet", str(ROOT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_is_clean():
    """``[tool.mypy]`` in pyproject.toml says what is checked and how (strict everywhere)."""
    done = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# "# type: ignore[code]" and then a comment that says why: mypy itself refuses an ignore
# without a code (ignore-without-code); the reason is ours to ask for.
_IGNORE = re.compile(r"#\s*type:\s*ignore(?P<codes>\[[^\]]*\])?(?P<rest>.*)$")


def test_every_type_ignore_has_a_code_and_a_reason():
    bare = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                found = _IGNORE.search(line)
                if found and not (found["codes"] and re.match(r"\s*#\s*\S", found["rest"])):
                    bare.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not bare, "type: ignore without an error code and a reason on the line:\n" + "\n".join(bare)
