"""Find each learner's notebooks in a folder of submissions.

Two layouts, which may be mixed in one folder (one entry per learner):

1. nbgrader's layout (what ``nbgrader collect`` and ``zip_collect`` produce)::

       SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb   (+ optional timestamp.txt)

2. one file per learner, named by student id::

       SUBMISSIONS/<student>.zip     any folder structure inside
       SUBMISSIONS/<student>.ipynb   a single notebook

Inside a learner's folder or zip, a notebook is matched to an assignment by, in order: its path
``<assignment>/<notebook>.ipynb``; its file name ``<notebook>.ipynb`` anywhere; a renamed copy
(``01_dot_product (1).ipynb``, ``01_dot_product-Copy1.ipynb``); its content (the nbgrader
``grade_id`` cells it shares with a released notebook — for ``alice.ipynb``). When several files
match one notebook, the best match wins (then the newest) and the others are reported.
``.ipynb_checkpoints`` and ``__MACOSX`` are ignored. Only names are read here (zip listings
are not decompressed), except to recognise a notebook by its content.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from . import repair

_IGNORED_PARTS = {".ipynb_checkpoints", "__MACOSX", "__pycache__"}
_SAFE = re.compile(r"[^A-Za-z0-9_.@+-]")


def safe_student_id(name: str) -> str:
    """A student id nbgrader can use in paths and globs (no spaces, ``*``, ``?``, ``[``)."""
    cleaned = _SAFE.sub("_", name.strip()).lstrip(".") or "student"
    return cleaned


@dataclass(frozen=True)
class NotebookRef:
    """Where a submitted notebook is: a file, or a member of a zip (not read until needed)."""

    kind: str  # "file" or "zip"
    path: str  # the file, or the zip
    member: str | None  # the zip member
    label: str  # how notes name it: "alice/01_dot_product/01_dot_product.ipynb"
    parts: tuple[str, ...] = ()  # path parts inside the learner's entry (for matching)
    mtime: float = 0.0  # the newest copy wins a tie

    def read(self) -> bytes:
        """The notebook's bytes, at most ``repair.MAX_BYTES + 1`` of them."""
        limit = repair.MAX_BYTES + 1
        if self.kind == "zip":
            with zipfile.ZipFile(self.path) as archive, archive.open(self.member) as member:
                return member.read(limit)
        with open(self.path, "rb") as handle:
            return handle.read(limit)


@dataclass
class Learner:
    student: str
    origin: str  # what was found: "folder", "zip" or "notebook"
    refs: dict[tuple[str, str], NotebookRef] = field(default_factory=dict)  # (assignment, nb)
    notes: dict[str, list[str]] = field(default_factory=dict)  # per assignment
    general: list[str] = field(default_factory=list)  # notes for every row of the learner
    unreadable: bool = False  # a broken zip, or a file too broken to tell what it is
    # nbgrader's bookkeeping files per assignment (timestamp.txt for late penalties,
    # submission_secret.txt for `nbgrader release_feedback`), passed on to nbgrader.
    extras: dict[str, dict[str, str]] = field(default_factory=dict)


def _candidates(entry: Path, learner: Learner) -> list[NotebookRef]:
    """Every notebook file of one learner entry, as refs (not read yet)."""
    refs = []
    if entry.is_dir():
        for path in sorted(entry.rglob("*.ipynb")):
            rel = path.relative_to(entry)
            if _IGNORED_PARTS & set(rel.parts) or not path.is_file():
                continue
            refs.append(
                NotebookRef(
                    kind="file",
                    path=str(path),
                    member=None,
                    parts=rel.parts,
                    label=f"{entry.name}/{rel.as_posix()}",
                    mtime=path.stat().st_mtime,
                )
            )
        for extra in [*entry.glob("*/timestamp.txt"), *entry.glob("*/submission_secret.txt")]:
            try:
                text = extra.read_text(encoding="utf-8")[:1000]
            except (OSError, UnicodeDecodeError):
                continue
            learner.extras.setdefault(extra.parent.name, {})[extra.name] = text
    elif entry.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(entry) as archive:
                infos = archive.infolist()
        except (zipfile.BadZipFile, OSError) as exc:
            learner.unreadable = True
            learner.general.append(f"{entry.name}: not a readable zip file ({exc})")
            return []
        for info in infos:
            parts = [p for p in info.filename.replace("\\", "/").split("/") if p]
            if info.is_dir() or not parts or not parts[-1].lower().endswith(".ipynb"):
                continue
            if _IGNORED_PARTS & set(parts) or parts[-1].startswith("._"):
                continue
            refs.append(
                NotebookRef(
                    kind="zip",
                    path=str(entry),
                    member=info.filename,
                    parts=tuple(parts),
                    label=f"{entry.name}:{'/'.join(parts)}",
                    mtime=_zip_time(info),
                )
            )
    else:
        refs.append(
            NotebookRef(
                kind="file",
                path=str(entry),
                member=None,
                parts=(entry.name,),
                label=entry.name,
                mtime=entry.stat().st_mtime,
            )
        )
    return refs


def _zip_time(info: zipfile.ZipInfo) -> float:
    import datetime

    try:
        return datetime.datetime(*info.date_time).timestamp()
    except (ValueError, OverflowError):
        return 0.0


def _stem_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _rank(
    ref: NotebookRef, assignments: dict[str, list[str]]
) -> tuple[int, tuple[str, str]] | None:
    """(rank, (assignment, notebook)) by name; lower rank is a better match."""
    parts = ref.parts
    stem = Path(parts[-1]).stem
    parent = parts[-2] if len(parts) > 1 else None
    for assignment, notebooks in assignments.items():
        for notebook in notebooks:
            if stem == notebook:
                return (0 if parent == assignment else 1), (assignment, notebook)
    for assignment, notebooks in assignments.items():
        for notebook in notebooks:  # "01_dot_product (1)", "01_dot_product-Copy1", ...
            if _stem_key(stem).startswith(_stem_key(notebook)):
                return 2, (assignment, notebook)
    return None


def _by_content(ref: NotebookRef, grade_ids: dict[tuple[str, str], set[str]]):
    """Match a notebook with an unknown name by the grade_ids it shares with a release."""
    try:
        data = repair.load_json(ref.read())
    except (repair.Unreadable, OSError, zipfile.BadZipFile, KeyError, RuntimeError):
        return None
    found = {
        gid
        for cell in data.get("cells", [])
        if isinstance(cell, dict) and (gid := repair.grade_id(cell))
    }
    best = max(grade_ids, key=lambda key: len(grade_ids[key] & found), default=None)
    if best is None or not grade_ids[best] & found:
        return None
    return best


def discover(
    folder: Path, assignments: dict[str, list[str]], grade_ids: dict[tuple[str, str], set[str]]
) -> tuple[list[Learner], list[str]]:
    """Learners found in ``folder`` and warnings about entries that are not submissions."""
    learners: dict[str, Learner] = {}
    warnings = []
    for entry in sorted(Path(folder).iterdir()):
        if entry.name.startswith(".") or entry.name in _IGNORED_PARTS:
            continue
        if entry.is_file() and entry.suffix.lower() not in (".zip", ".ipynb"):
            warnings.append(f"ignored {entry.name}: not a folder, .zip or .ipynb")
            continue
        name = entry.stem if entry.is_file() else entry.name
        student = safe_student_id(name)
        origin = "folder" if entry.is_dir() else entry.suffix.lower().lstrip(".")
        origin = {"ipynb": "notebook"}.get(origin, origin)
        if student in learners:
            warnings.append(f"ignored {entry.name}: student {student} already has a submission")
            continue
        learner = Learner(student=student, origin=origin)
        learners[student] = learner
        if student != name:
            learner.general.append(f"student id {name!r} used as {student!r}")
        _assign(learner, _candidates(entry, learner), assignments, grade_ids)
    return list(learners.values()), warnings


def _assign(learner: Learner, refs: list[NotebookRef], assignments, grade_ids) -> None:
    chosen: dict[tuple[str, str], list[tuple]] = {}
    unmatched = []
    for ref in refs:
        ranked = _rank(ref, assignments)
        if ranked is None:
            key = _by_content(ref, grade_ids)
            ranked = (3, key) if key else None
        if ranked is None:
            unmatched.append(ref)
            continue
        rank, key = ranked
        chosen.setdefault(key, []).append((rank, -ref.mtime, ref.label, ref))
    only = [(a, nb) for a, nbs in assignments.items() for nb in nbs]
    if unmatched and len(only) == 1 and only[0] not in chosen and len(unmatched) == 1:
        # One notebook, one assignment: it can only be that one (even if unreadable).
        chosen[only[0]] = [(4, 0, unmatched[0].label, unmatched[0])]
        unmatched = []
    for key, options in chosen.items():
        options.sort(key=lambda option: option[:3])
        best = options[0][3]
        learner.refs[key] = best
        notes = learner.notes.setdefault(key[0], [])
        if options[0][0] >= 2:
            notes.append(f"graded {best.label} as {key[1]}.ipynb")
        if len(options) > 1:
            others = ", ".join(option[2] for option in options[1:])
            notes.append(f"several files for {key[1]}.ipynb: graded {best.label}, ignored {others}")
    for ref in unmatched:
        try:
            repair.load_json(ref.read())
        except (repair.Unreadable, OSError, zipfile.BadZipFile, KeyError) as exc:
            # Cannot tell which assignment it was for: every row without a notebook says so.
            learner.unreadable = True
            learner.general.append(f"{ref.label}: {exc} (cannot tell which assignment it is for)")
            continue
        learner.general.append(f"{ref.label}: not recognised as any assignment's notebook")
