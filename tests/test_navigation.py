"""Every notebook of solutions/ links to its neighbours in one style, with their titles.

The rule (docs/authoring.md, "Shape of a notebook"):

- the header (the first cell) ends with the navigation paragraph
  ``← previous: [<title>](<link>) · next → [<title>](<link>)``; the first notebook says
  ``← previous: none, this is the first notebook`` and the last one
  ``next → none, this is the last notebook``;
- the summary (the last cell) has ``next → [<title>](<link>)``, or the last notebook's
  ``next → none, this is the last notebook``;
- every link to a notebook, anywhere in the prose, has the target's *short title* as its
  text: the target's first heading up to its first colon (``02 · Scaling`` for
  ``# 02 · Scaling: why divide by $\\sqrt{d_k}$``), and the target file exists.

Notebooks are ordered by their folder names (``01_dot_product``, ``02_scaling``, ...).
``course/`` is generated from ``solutions/`` and kept in sync by tests/test_release.py.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "solutions").glob("*/*.ipynb"))

FIRST = "← previous: none, this is the first notebook"
LAST = "next → none, this is the last notebook"
NOTEBOOK_LINK = re.compile(r"\[([^\]]+)\]\((\.\./[^)\s]+\.ipynb)\)")


def short_title(nb: nbformat.NotebookNode) -> str:
    """The notebook's first heading without ``#``, up to its first colon."""
    heading = nb.cells[0].source.splitlines()[0]
    return heading.lstrip("#").split(":")[0].strip()


def relative_link(path: Path) -> str:
    """The link from one notebook to ``path``: up to solutions/, then its folder and file."""
    return f"../{path.parent.name}/{path.name}"


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (line breaks included) as one space."""
    return " ".join(text.split())


def navigation_problems(notebooks: dict[Path, nbformat.NotebookNode]) -> list[str]:
    """Everything that breaks the navigation rule, one sentence each; empty if none.

    Parameters
    ----------
    notebooks : dict of Path to NotebookNode
        The course's notebooks, in course order.
    """
    paths = list(notebooks)
    titles = {path.resolve(): short_title(nb) for path, nb in notebooks.items()}
    problems = []
    for i, (path, nb) in enumerate(notebooks.items()):
        name = path.parent.name
        prev = f"← previous: [{titles[paths[i - 1].resolve()]}]({relative_link(paths[i - 1])})"
        nxt_link = (
            f"next → [{titles[paths[i + 1].resolve()]}]({relative_link(paths[i + 1])})"
            if i + 1 < len(paths)
            else LAST
        )
        expected = f"{FIRST if i == 0 else prev} · {nxt_link}"
        last_paragraph = one_line(nb.cells[0].source.strip().split("\n\n")[-1])
        if last_paragraph != expected:
            problems.append(
                f"{name}: the header's last paragraph should be {expected!r}, "
                f"got {last_paragraph!r}"
            )
        if nxt_link not in one_line(nb.cells[-1].source):
            problems.append(f"{name}: the summary (last cell) should contain {nxt_link!r}")
        for cell in nb.cells:
            if cell.cell_type != "markdown":
                continue
            for text, link in NOTEBOOK_LINK.findall(cell.source):
                target = (path.parent / link).resolve()
                if target not in titles:
                    problems.append(f"{name}: the link {link!r} points to no notebook")
                elif text != titles[target]:
                    problems.append(
                        f"{name}: the link to {link!r} reads {text!r}; use the target's "
                        f"title, {titles[target]!r}"
                    )
    return problems


@pytest.fixture(scope="module")
def notebooks() -> dict[Path, nbformat.NotebookNode]:
    assert len(NOTEBOOKS) >= 2, "solutions/ should hold the course's notebooks"
    return {path: nbformat.read(path, as_version=4) for path in NOTEBOOKS}


def test_every_notebook_links_to_its_neighbours_with_their_titles(notebooks):
    problems = navigation_problems(notebooks)
    assert not problems, "\n".join(problems)


def test_link_targets_are_real_files(notebooks):
    for path, nb in notebooks.items():
        for cell in nb.cells:
            for _, link in NOTEBOOK_LINK.findall(
                cell.source if cell.cell_type == "markdown" else ""
            ):
                assert (path.parent / link).is_file(), f"{path.parent.name}: {link} is missing"


def test_the_check_notices_a_wrong_link_text_a_missing_link_and_a_wrong_target(notebooks):
    """The rule can fail: three typical slips in copies of the notebooks are each reported."""
    paths = list(notebooks)
    first, second = paths[0], paths[1]

    broken = copy.deepcopy(notebooks)
    header = broken[second].cells[0]
    title = short_title(notebooks[first])
    header.source = header.source.replace(f"[{title}]", "[01 · Dot products]")
    assert any("header's last paragraph" in p for p in navigation_problems(broken))

    broken = copy.deepcopy(notebooks)
    summary = broken[first].cells[-1]
    summary.source = summary.source.replace("next →", "Next:")
    assert any("summary" in p for p in navigation_problems(broken))

    broken = copy.deepcopy(notebooks)
    header = broken[first].cells[0]
    header.source += "\n\nSee also [Nowhere](../00_nowhere/00_nowhere.ipynb)."
    assert any("points to no notebook" in p for p in navigation_problems(broken))
