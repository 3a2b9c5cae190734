"""environment.yml (conda, Binder) must list the same packages as pyproject.toml.

pyproject.toml is the source of truth for pip users: ``[project.dependencies]`` plus the
``test`` and ``dev`` extras. environment.yml must name the same packages with the same version
specifiers, plus ``python`` (matching ``requires-python``), ``pip`` and a pip section that
installs this package with ``-e .``. Conda is not available on the course's CI machine, so
this comparison is the only thing that keeps the two files from drifting apart.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
ENVIRONMENT = ROOT / "environment.yml"
EXTRAS = ("test", "dev")  # the optional-dependency groups environment.yml also installs
CONDA_ONLY = {"python", "pip"}  # listed in environment.yml, not in pyproject's dependencies


def normalise(name: str) -> str:
    """PEP 503 name: lowercase, runs of ``-``, ``_``, ``.`` become one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_environment_yml(text: str) -> dict:
    """Parse the small subset of YAML that environment.yml uses.

    Top-level ``key: value`` pairs, and ``key:`` followed by a list of ``- item`` scalars,
    where one item may be ``- pip:`` with a nested list. Comments and blank lines are skipped.
    Anything else raises ValueError, so a new YAML construct cannot be silently misread.
    """
    data: dict = {}
    items: list | None = None  # the list under the current top-level key
    item_indent: int | None = None
    nested: list | None = None  # the list under a `- pip:` item
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not line:
            continue
        indent = len(line) - len(line.lstrip(" "))
        body = line.strip()
        if indent == 0:
            key, colon, value = body.partition(":")
            if not colon:
                raise ValueError(f"environment.yml line {lineno}: expected `key:`, got {raw!r}")
            value = value.strip()
            if value[:1] in ("[", "{", "|", ">", "&", "*", "!"):
                raise ValueError(f"environment.yml line {lineno}: unsupported YAML {raw!r}")
            value = value.strip("'\"")
            items = None if value else []
            data[key.strip()] = value or items
            item_indent, nested = None, None
        elif body.startswith("- ") and items is not None:
            item = body[2:].strip().strip("'\"")
            item_indent = indent if item_indent is None else item_indent
            if indent == item_indent:
                nested = [] if item.endswith(":") else None
                items.append({item[:-1]: nested} if item.endswith(":") else item)
            elif indent > item_indent and nested is not None:
                nested.append(item)
            else:
                raise ValueError(f"environment.yml line {lineno}: unexpected indent in {raw!r}")
        else:
            raise ValueError(f"environment.yml line {lineno}: unsupported YAML {raw!r}")
    return data


def split_conda_spec(spec: str) -> tuple[str, str]:
    """``"ipywidgets>=8.1,<9"`` -> ``("ipywidgets", ">=8.1,<9")``."""
    match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*?)\s*", spec)
    if match is None:
        raise ValueError(f"cannot read the conda dependency {spec!r}")
    return match.group(1), match.group(2)


def specifier_set(spec: str, where: str) -> SpecifierSet:
    try:
        return SpecifierSet(spec)
    except InvalidSpecifier:
        pytest.fail(
            f"{where}: {spec!r} is not a PEP 440 specifier (write e.g. `numpy>=1.26`, not "
            "conda's `numpy 1.26.*` or `numpy=1.26`), so it cannot be compared with pyproject"
        )


def pyproject_requirements(pyproject: dict) -> dict[str, SpecifierSet]:
    """Package name -> specifiers from [project.dependencies] and the EXTRAS groups."""
    project = pyproject["project"]
    missing = [extra for extra in EXTRAS if extra not in project["optional-dependencies"]]
    assert not missing, f"pyproject.toml has no optional-dependencies group(s) {missing}"
    lines = list(project["dependencies"])
    for extra in EXTRAS:
        lines += project["optional-dependencies"][extra]
    requirements: dict[str, SpecifierSet] = {}
    for line in lines:
        requirement = Requirement(line)
        name = normalise(requirement.name)
        assert name not in requirements, f"pyproject.toml lists {name} twice"
        requirements[name] = requirement.specifier
    return requirements


def conda_requirements(environment: dict) -> dict[str, SpecifierSet]:
    """Package name -> specifiers for the conda packages (python and pip excluded)."""
    requirements: dict[str, SpecifierSet] = {}
    for entry in environment["dependencies"]:
        if isinstance(entry, dict):  # the `- pip:` section
            continue
        raw_name, spec = split_conda_spec(entry)
        name = normalise(raw_name)
        if name in CONDA_ONLY:
            continue
        assert name not in requirements, f"environment.yml lists {name} twice"
        requirements[name] = specifier_set(spec, f"environment.yml entry {entry!r}")
    return requirements


def describe_differences(pip: dict[str, SpecifierSet], conda: dict[str, SpecifierSet]) -> str:
    """One line per package that differs; an empty string when the two agree."""
    lines = []
    for name in sorted(pip.keys() - conda.keys()):
        lines.append(f"- {name}{pip[name]} is in pyproject.toml but not in environment.yml")
    for name in sorted(conda.keys() - pip.keys()):
        lines.append(f"- {name}{conda[name]} is in environment.yml but not in pyproject.toml")
    for name in sorted(pip.keys() & conda.keys()):
        if pip[name] != conda[name]:
            lines.append(
                f"- {name}: pyproject.toml says {str(pip[name]) or '(any)'!r}, "
                f"environment.yml says {str(conda[name]) or '(any)'!r}"
            )
    return "\n".join(lines)


@pytest.fixture(scope="module")
def pyproject() -> dict:
    with PYPROJECT.open("rb") as f:
        return tomllib.load(f)


@pytest.fixture(scope="module")
def environment() -> dict:
    return parse_environment_yml(ENVIRONMENT.read_text(encoding="utf-8"))


def test_environment_yml_lists_the_same_packages_and_specifiers(pyproject, environment):
    differences = describe_differences(
        pyproject_requirements(pyproject), conda_requirements(environment)
    )
    assert not differences, (
        "environment.yml and pyproject.toml disagree (pyproject.toml is the source of truth: "
        f"change environment.yml to match):\n{differences}"
    )


def test_environment_yml_python_pip_and_editable_install(pyproject, environment):
    assert environment.get("name") == "attention-course", f"name: {environment.get('name')!r}"
    assert environment.get("channels") == ["conda-forge"], (
        f"channels must be just conda-forge (nbgrader is there), got {environment.get('channels')}"
    )
    entries = [e for e in environment["dependencies"] if isinstance(e, str)]
    conda = dict(split_conda_spec(e) for e in entries)
    requires_python = pyproject["project"]["requires-python"]
    assert "python" in conda, "environment.yml must pin python"
    assert SpecifierSet(conda["python"]) == SpecifierSet(requires_python), (
        f"environment.yml has python{conda['python']}, pyproject.toml requires-python is "
        f"{requires_python!r}"
    )
    assert "pip" in conda, "environment.yml needs `- pip` for its pip section"
    pip_sections = [e["pip"] for e in environment["dependencies"] if isinstance(e, dict)]
    assert pip_sections == [["-e ."]], (
        f"the pip section must install this package with `- -e .`, got {pip_sections}"
    )


def test_hand_parser_agrees_with_yaml(environment):
    yaml = pytest.importorskip("yaml")
    assert environment == yaml.safe_load(ENVIRONMENT.read_text(encoding="utf-8"))


def test_differences_are_named():
    """The comparison itself: every kind of drift is reported by package name."""
    pip = {"numpy": SpecifierSet(">=1.26"), "tqdm": SpecifierSet(">=4.66"), "ruff": SpecifierSet()}
    conda = {"numpy": SpecifierSet(">=1.25"), "ruff": SpecifierSet(), "scipy": SpecifierSet()}
    message = describe_differences(pip, conda)
    assert "tqdm>=4.66 is in pyproject.toml but not in environment.yml" in message
    assert "scipy is in environment.yml but not in pyproject.toml" in message
    assert "numpy: pyproject.toml says '>=1.26', environment.yml says '>=1.25'" in message
    assert "ruff" not in message
    # Order of clauses and spacing do not matter; names are normalised.
    same = {"ipywidgets": SpecifierSet(">=8.1,<9")}
    assert describe_differences(same, {"ipywidgets": SpecifierSet("<9, >=8.1")}) == ""
    assert normalise("Pre_Commit") == normalise("pre-commit") == "pre-commit"


def test_parser_reads_nested_pip_section_and_rejects_what_it_does_not_know():
    text = (
        "name: x\nchannels:\n  - conda-forge\ndependencies:\n"
        "  - numpy>=1.26  # note\n  - pip:\n      - -e .\n"
    )
    assert parse_environment_yml(text) == {
        "name": "x",
        "channels": ["conda-forge"],
        "dependencies": ["numpy>=1.26", {"pip": ["-e ."]}],
    }
    for unsupported in ("dependencies: [numpy, scipy]\n", "name: x\n  nested: 1\n"):
        with pytest.raises(ValueError, match="unsupported YAML"):
            parse_environment_yml(unsupported)
