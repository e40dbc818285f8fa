"""The documentation points at what exists: every relative link of the Markdown pages reaches a file (and a
heading, when it names one), and every mention of a repository file in any tracked text file names a file
that is there. A renamed or removed module, spec or page fails here until every mention follows it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]
TEXT_SUFFIXES = (".py", ".md", ".yaml", ".toml", ".ini")

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")  # [text](target)
# A concrete path: a known top folder, then names of word characters, dots and dashes only, so a glob
# (`spec/*.yaml`), a placeholder (`spec/<method>.yaml`), a brace list (`{train,data}.yaml`) or an elision
# (`runs/...`) is never taken for one; not inside a longer path (`seq2seq/data/tasks.py`, `../README.md`).
MENTION = re.compile(
    r"(?<![\w/.\-])"
    r"((?:docs|spec|harness|impl|tests)/[\w.\-]+(?:/[\w.\-]+)*\.(?:md|yaml|py|json)|CONTRIBUTING\.md|README\.md)"
    r"(?![\w/\-])"
)


def tracked_text_files() -> list[Path]:
    """The repository's text files: tracked, plus new ones not ignored (what the next commit may hold)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [REPO / name for name in listed if name.endswith(TEXT_SUFFIXES) and (REPO / name).is_file()]


def anchor(heading: str) -> str:
    """GitHub's id for a heading: lower case, punctuation but `-` and `_` dropped, spaces as dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {anchor(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


def broken_links(page: Path, root: Path = REPO) -> list[str]:
    """Each relative link of `page` whose file (or heading) does not exist, as `page: target` (from `root`)."""
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, heading = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists() or (heading and resolved.is_file() and heading not in anchors(resolved)):
            broken.append(f"{page.relative_to(root)}: {target}")
    return broken


def broken_mentions(text: str, root: Path = REPO) -> list[str]:
    """The repository paths `text` mentions that name no file under `root`. A one-letter name
    (`harness/x.py`, `tests/t.py`) is a made-up example, as tests use them."""
    return [path for path in MENTION.findall(text) if not (root / path).exists() and len(Path(path).stem) > 1]


def test_the_pages_exist():
    assert [page.name for page in PAGES if not page.is_file()] == []


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_every_relative_link_reaches_a_file(page):
    assert broken_links(page) == []


def test_every_file_mention_names_a_file_that_exists():
    broken = [
        f"{path.relative_to(REPO)}:{number}: {mention}"
        for path in tracked_text_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for mention in broken_mentions(line)
    ]
    assert broken == []


def test_a_broken_mention_is_found_and_globs_and_placeholders_are_not(tmp_path):
    (tmp_path / "spec").mkdir()
    (tmp_path / "spec" / "compacter.yaml").write_text("")
    wrong_spec, wrong_module = "spec/" + "compactor.yaml", "harness/train/" + "no_such_module.py"  # split: this
    text = (  # file is scanned too, and must not mention them
        f"see `spec/compacter.yaml`, {wrong_spec} and [x]({wrong_module}); "
        "spec/*.yaml, spec/<method>.yaml, tests/mutants/harness/{train,data}.yaml, runs/..., "
        "seq2seq/data/tasks.py:28, ../README.md, harness.json, tests/t.py::test_x, docs/ and README.md."
    )
    assert broken_mentions(text, root=tmp_path) == [wrong_spec, wrong_module, "README.md"]


def test_a_broken_link_and_a_missing_heading_are_found(tmp_path):
    page = tmp_path / "docs" / "a.md"
    page.parent.mkdir()
    (tmp_path / "README.md").write_text("# Read me\n\n## The switch: `fidelity: paper | released`\n")
    page.write_text(
        "[ok](../README.md) [ok](../README.md#the-switch-fidelity-paper--released) [web](https://x.org/y.md) "
        "[gone](missing.md) [no heading](../README.md#nowhere) [here](#local)\n\n# Local\n"
    )
    assert broken_links(page, root=tmp_path) == ["docs/a.md: missing.md", "docs/a.md: ../README.md#nowhere"]
