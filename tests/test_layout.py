"""README's Layout section stays true: every package folder under src/berts/ is listed, every listed
folder exists, and the README stays short enough to read (at most 320 lines)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def listed_folders() -> list[str]:
    """The first word of each line in the Layout section's code block, where it names a folder."""
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Layout\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "README.md has no '## Layout' section"
    block = re.search(r"^```\n(.*?)^```", section.group(1), re.S | re.M)
    assert block, "README.md's Layout section has no code block"
    words = [line.split()[0] for line in block.group(1).splitlines() if line.strip()]
    return [w for w in words if w.endswith("/")]


def package_folders() -> set[str]:
    src = ROOT / "src"
    return {p.parent.relative_to(src).as_posix() + "/" for p in (src / "berts").rglob("__init__.py")
            if "__pycache__" not in p.parts}


def test_every_package_folder_is_listed():
    listed = {f[len("src/"):] for f in listed_folders() if f.startswith("src/")}
    missing = sorted(package_folders() - listed)
    assert not missing, f"README.md's Layout section does not list: {missing}"


def test_every_listed_folder_exists():
    folders = listed_folders()
    assert {"src/berts/", "benchmarks/", "configs/", "docs/", "tests/"} <= set(folders)
    absent = [f for f in folders if not (ROOT / f).is_dir()]
    assert not absent, f"README.md's Layout section lists folders that do not exist: {absent}"
    assert len(folders) == len(set(folders)), "a folder is listed twice"


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= 320, f"README.md has {lines} lines; the reference belongs in docs/"
