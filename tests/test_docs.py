"""The README and docs/ stay navigable and true to CI: every relative link resolves (files and
#anchors, by GitHub's heading slugs), the README stays one page, and the test command it states
is the one .ci/run runs."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 160
TEST_COMMAND = "make test"

FENCE = re.compile(r"^\s*(```|~~~)")
LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code spans blanked out (links in code
    are examples, not links)."""
    out, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            out.append("")
            continue
        out.append("" if fenced else INLINE_CODE.sub(lambda m: " " * len(m.group(0)), line))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup reduced to its text, lowercased, punctuation
    dropped (letters, digits, spaces, '-' and '_' kept), spaces turned into '-'."""
    text = INLINE_CODE.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links and images: their text
    text = re.sub(r"<[^>]+>", "", text)                      # inline HTML tags
    text = text.lower()
    kept = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, with GitHub's -1, -2 ... for repeated slugs."""
    seen: dict[str, int] = {}
    out = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        m = None if fenced else HEADING.match(line)
        if m:
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[tuple[int, str]]:
    found = []
    for number, line in enumerate(prose_lines(path.read_text(encoding="utf-8")), 1):
        for pattern in (LINK, IMAGE):
            found += [(number, m.group(1)) for m in pattern.finditer(line)]
    return found


def is_external(target: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target)) or target.startswith("//")


def test_the_pages_exist():
    names = {p.name for p in PAGES}
    for page in ("design.md", "datasets.md", "invaders.md", "training.md", "evaluation.md",
                 "reproducing.md", "results.md", "benchmarks.md"):
        assert page in names, f"docs/{page} is missing"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path):
    problems = []
    for number, target in links(page):
        if is_external(target):
            continue
        file_part, _, anchor = target.partition("#")
        dest = page if not file_part else (page.parent / file_part).resolve()
        where = f"{page.relative_to(ROOT)}:{number}: {target}"
        if not dest.exists():
            problems.append(f"{where}: no such file")
            continue
        if ROOT not in dest.parents and dest != ROOT:
            problems.append(f"{where}: points outside the repository")
            continue
        if anchor:
            if dest.suffix != ".md":
                problems.append(f"{where}: an anchor into a non-Markdown file")
            elif anchor not in anchors(dest):
                problems.append(f"{where}: no heading '#{anchor}' in {dest.relative_to(ROOT)}")
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_every_page_is_linked_from_the_readme():
    targets = {(README.parent / t.partition("#")[0]).resolve() for _, t in links(README) if not is_external(t)}
    missing = [p.name for p in PAGES[1:] if p.resolve() not in targets]
    assert not missing, f"README.md does not link to docs/{', docs/'.join(missing)}"


def test_readme_is_one_page():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines; keep it at most {README_MAX_LINES} (move detail to docs/)"


def test_readme_test_command_is_what_ci_runs():
    readme = README.read_text(encoding="utf-8")
    # the commands the README shows in its shell blocks
    commands, fenced = [], False
    for line in readme.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            commands.append(line.split("#", 1)[0].strip())
    stated = [c for c in commands if c.startswith("make ") and "test" in c]
    assert stated == [TEST_COMMAND], f"README.md should state `{TEST_COMMAND}` as its test command, found {stated}"
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
          if line.strip() and not line.strip().startswith("#")]
    assert ci[-1] == TEST_COMMAND, f".ci/run ends with `{ci[-1]}`, not the README's `{TEST_COMMAND}`"
    assert [c for c in ci if c.startswith("make ")] == [TEST_COMMAND], ".ci/run runs another make target"
    assert re.search(r"^test:", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M), "the Makefile has no test target"


def test_slug_rules():
    assert slug("Speed defaults: the fast path on CPU, eager fp32 on CUDA") == "speed-defaults-the-fast-path-on-cpu-eager-fp32-on-cuda"
    assert slug("The shipped model in `make demo`") == "the-shipped-model-in-make-demo"
    assert slug("Space Invaders (`invaders`)") == "space-invaders-invaders"
    assert slug("Does it learn? A CPU check") == "does-it-learn-a-cpu-check"
    assert slug("snake_case and [a link](x.md)") == "snake_case-and-a-link"
