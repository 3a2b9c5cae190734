"""Pre-flight checks and repairs of a submitted notebook, before nbgrader sees it.

nbgrader stops on several things learners really hand in (measured with nbgrader 0.9.6):

- a cell duplicated with its nbgrader metadata (copy/paste, or a JSON edit): ``DeduplicateIds``
  blanks the earlier copies' metadata to ``{}`` and then ``OverwriteCells.add_missing_cells``
  fails with ``KeyError: 'grade_id'`` — the notebook is not graded at all;
- a deleted test cell whose neighbour is also gone, or follows a read-only cell:
  ``add_missing_grade_cells`` fails with ``KeyError``;
- a notebook that is not valid JSON, or not a notebook, or an old format.

:func:`prepare` grades such a notebook "as fairly as possible" instead, and says what it did:

- every cell is rebuilt from its type, source and metadata (invalid outputs, ids and fields
  cannot break nbformat validation; nbgrader clears outputs anyway);
- nbgrader metadata is reset to the released notebook's for the same ``grade_id`` (learners
  cannot change points, lock state or cell roles); unknown ``grade_id`` metadata is dropped;
  a cell that lost its metadata but kept its cell id gets it back;
- duplicated cells: the *last* copy keeps the metadata (nbgrader's own rule: the learner's last
  edit; for a written answer, the last copy that is not the empty stub); the other copies stay
  in place as ordinary cells, so the notebook runs exactly as the learner ran it;
- deleted read-only code cells (setup, demos, tests) and written-answer cells are put back from
  the release after the nearest cell that precedes them there; a deleted exercise cell is not
  (the learner's code is gone; its tests fail with a clear NameError);
- edited read-only cells are only reported: nbgrader restores them from the gradebook.

:func:`rebuild` is the last resort when nbgrader still fails: the released notebook with the
learner's answers (solution cells, by ``grade_id``) copied in.
"""

from __future__ import annotations

import copy
import json
import re
import uuid

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

from .paths import split_hidden

#: A submitted notebook larger than this is not read (a learner who saved 2 GB of output).
MAX_BYTES = 64 * 1024 * 1024

_CELL_ID = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")


class Unreadable(Exception):  # noqa: N818 - reads as a verdict on the file
    """The file is not a notebook nbgrader could grade; the message says why."""


def nbgrader_meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def grade_id(cell) -> str | None:
    gid = nbgrader_meta(cell).get("grade_id")
    return gid if isinstance(gid, str) and gid else None


def grade_ids(nb) -> set[str]:
    return {gid for cell in nb.get("cells", []) if (gid := grade_id(cell))}


def is_code_exercise(cell) -> bool:
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("solution"))


def is_written_answer(cell) -> bool:
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "markdown" and bool(meta.get("solution") and meta.get("grade"))


def load_json(raw: bytes) -> dict:
    """Parse a submitted file; :class:`Unreadable` says why it cannot be a notebook."""
    if len(raw) > MAX_BYTES:
        raise Unreadable(f"the file is larger than {MAX_BYTES // 2**20} MB")
    if not raw.strip():
        raise Unreadable("the file is empty")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Unreadable(
            f"corrupt JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except RecursionError:
        raise Unreadable("corrupt JSON: nested too deeply") from None
    if not isinstance(data, dict) or not (
        isinstance(data.get("cells"), list) or isinstance(data.get("worksheets"), list)
    ):
        raise Unreadable("valid JSON, but not a Jupyter notebook (no list of cells)")
    return data


def _as_text(source) -> str:
    if isinstance(source, list):
        return "".join(str(part) for part in source)
    return source if isinstance(source, str) else ""


def _upgrade(data: dict, notes: list[str]) -> list:
    """The notebook's cells as plain dicts, upgraded from nbformat 3 if needed."""
    major = data.get("nbformat")
    if "worksheets" in data or (isinstance(major, int) and major < 4):
        try:
            nb = nbformat.convert(nbformat.from_dict(data), 4)
        except Exception as exc:  # noqa: BLE001 - anything nbformat rejects
            raise Unreadable(f"an old notebook format nbformat cannot convert ({exc})") from None
        notes.append(f"converted from notebook format {major} to 4")
        return list(nb.cells)
    return data["cells"]


def parse(raw: bytes, notes: list[str] | None = None) -> NotebookNode:
    """A valid nbformat-4 notebook from a submitted file (cells rebuilt, outputs dropped)."""
    notes = [] if notes is None else notes
    data = load_json(raw)
    cells, seen_ids, dropped = [], set(), 0
    for cell in _upgrade(data, notes):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            dropped += 1
            continue
        metadata = cell.get("metadata")
        metadata = copy.deepcopy(metadata) if isinstance(metadata, dict) else {}
        source = _as_text(cell.get("source", ""))
        make = {"code": new_code_cell, "markdown": new_markdown_cell, "raw": new_raw_cell}
        new = make[cell["cell_type"]](source=source, metadata=metadata)
        attachments = cell.get("attachments")
        if cell["cell_type"] != "code" and isinstance(attachments, dict):
            new["attachments"] = attachments
        cell_id = cell.get("id")
        if isinstance(cell_id, str) and _CELL_ID.match(cell_id) and cell_id not in seen_ids:
            new["id"] = cell_id
        else:
            new["id"] = uuid.uuid4().hex[:12]
        seen_ids.add(new["id"])
        cells.append(new)
    if dropped:
        notes.append(f"dropped {dropped} malformed cell(s)")
    nb = new_notebook(cells=cells)
    nbformat.validate(nb)
    return nb


def prepare(raw: bytes, release: NotebookNode) -> tuple[NotebookNode, list[str]]:
    """Parse and repair a submitted notebook against its release (module docstring)."""
    notes: list[str] = []
    nb = parse(raw, notes)
    nb.metadata = copy.deepcopy(release.metadata)  # nbgrader sets the kernelspec anyway
    released = {gid: cell for cell in release.cells if (gid := grade_id(cell))}
    by_cell_id = {cell.get("id"): cell for cell in release.cells if grade_id(cell)}

    _reset_metadata(nb, released, by_cell_id, notes)
    _deduplicate(nb, released, notes)
    _restore_missing(nb, release, notes)

    retyped = [
        gid
        for cell in nb.cells
        if (gid := grade_id(cell)) and cell.cell_type != released[gid].cell_type
    ]
    if retyped:
        notes.append("cell type restored (nbgrader): " + ", ".join(retyped))
    edited = [
        gid
        for cell in nb.cells
        if (gid := grade_id(cell))
        and nbgrader_meta(cell).get("locked")
        and released[gid].cell_type == "code"
        and _without_hidden(cell.source) != _without_hidden(released[gid].source)
    ]
    if edited:
        notes.append("edited read-only cell(s) restored: " + ", ".join(edited))
    nbformat.validate(nb)
    return nb, notes


def _without_hidden(source: str) -> str:
    """A test cell's source without its hidden-test block (the solutions notebook has one)."""
    return "\n".join(line.rstrip() for line in split_hidden(source)[0]).strip()


def _reset_metadata(nb, released: dict, by_cell_id: dict, notes: list[str]) -> None:
    present = {grade_id(cell) for cell in nb.cells} - {None}
    unknown, reattached = [], []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader")
        gid = grade_id(cell)
        if gid in released:
            cell.metadata["nbgrader"] = copy.deepcopy(released[gid].metadata["nbgrader"])
        elif meta is not None:
            del cell.metadata["nbgrader"]
            if gid:
                unknown.append(gid)
        elif cell.get("id") in by_cell_id:
            # Same cell id as a released nbgrader cell, metadata gone (pasted through another
            # tool): give it back, unless that grade_id is present elsewhere.
            gid = grade_id(by_cell_id[cell["id"]])
            if gid not in present:
                cell.metadata["nbgrader"] = copy.deepcopy(released[gid].metadata["nbgrader"])
                present.add(gid)
                reattached.append(gid)
    if unknown:
        notes.append("ignored nbgrader metadata with unknown grade_id(s): " + ", ".join(unknown))
    if reattached:
        notes.append("re-attached lost nbgrader metadata (same cell id): " + ", ".join(reattached))


def _deduplicate(nb, released: dict, notes: list[str]) -> None:
    positions: dict[str, list[int]] = {}
    for index, cell in enumerate(nb.cells):
        if gid := grade_id(cell):
            positions.setdefault(gid, []).append(index)
    for gid, indices in positions.items():
        if len(indices) < 2:
            continue
        keep = indices[-1]
        if is_written_answer(nb.cells[keep]):
            stub = released[gid].source.strip()
            answered = [i for i in indices if nb.cells[i].source.strip() != stub]
            keep = answered[-1] if answered else keep
        for index in indices:
            if index != keep:
                del nb.cells[index].metadata["nbgrader"]
                nb.cells[index].metadata.pop("deletable", None)
                nb.cells[index].metadata.pop("editable", None)
        which = "last" if keep == indices[-1] else f"{indices.index(keep) + 1}."
        notes.append(
            f"cell '{gid}' appeared {len(indices)} times: graded the {which} copy, "
            "the others ran as ordinary cells"
        )


def _restore_missing(nb, release, notes: list[str]) -> None:
    restored, missing_exercises = [], []
    order = [cell for cell in release.cells if grade_id(cell)]
    for position, cell in enumerate(order):
        gid = grade_id(cell)
        index = {grade_id(c): i for i, c in enumerate(nb.cells) if grade_id(c)}
        if gid in index:
            continue
        if is_code_exercise(cell):
            missing_exercises.append(gid)
            continue
        meta = nbgrader_meta(cell)
        if cell.cell_type != "code" and not meta.get("grade"):
            continue  # read-only text: nothing to grade, nothing to run
        anchor = next(
            (
                index[grade_id(prev)]
                for prev in reversed(order[:position])
                if grade_id(prev) in index
            ),
            -1,
        )
        new = copy.deepcopy(cell)
        if new.get("id") in {c.get("id") for c in nb.cells}:
            new["id"] = uuid.uuid4().hex[:12]
        nb.cells.insert(anchor + 1, new)
        restored.append(gid)
    if restored:
        notes.append("restored deleted cell(s) from the release: " + ", ".join(restored))
    if missing_exercises:
        notes.append(
            "exercise cell(s) deleted (their tests score 0 unless the function is "
            "defined elsewhere): " + ", ".join(missing_exercises)
        )


def rebuild(learner: NotebookNode | None, release: NotebookNode) -> NotebookNode:
    """The release with the learner's answers (solution cells, by grade_id) copied in."""
    answers = {}
    for cell in learner.cells if learner is not None else []:
        if (gid := grade_id(cell)) and nbgrader_meta(cell).get("solution"):
            answers[gid] = cell.source  # the last copy wins, as in prepare()
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        if (gid := grade_id(cell)) in answers:
            cell.source = answers[gid]
    return nb
