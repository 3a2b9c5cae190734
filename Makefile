# The README's two commands: `make lab` runs the course, `make test` runs the tests.
# Both create .venv on first use and need no activated environment.
PYTHON ?= python3
VENV   := .venv
BIN    := $(abspath $(VENV))/bin
# nbgrader and jupyter start helper programs (alembic, jupyter-*) by name: the venv's
# bin/ must be on PATH for every subprocess (without it nbgrader fails with
# FileNotFoundError: 'alembic' and leaves a half-made gradebook.db).
export PATH := $(BIN):$(PATH)

.PHONY: lab test lint bench clean-venv release

# nbgrader 0.9.6 needs Python >= 3.11: stop before pip does, with one line saying what to do.
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || \
		{ echo "Python >= 3.11 is needed, '$(PYTHON)' is $$($(PYTHON) --version 2>&1 | head -1); point make at a newer one: make PYTHON=python3.12 $(or $(MAKECMDGOALS),lab)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# One stamp per extra set, remade whenever pyproject.toml changes.
$(VENV)/.installed-lab: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,dev]"
	touch $@ $(VENV)/.installed-lab

# LAB_ARGS lets tests (and you) add options, e.g. LAB_ARGS="--no-browser --port=8899".
LAB_ARGS ?=
# Jupyter refuses to run as root (containers, CI) without --allow-root.
ROOT_ARGS := $(if $(filter 0,$(shell id -u)),--allow-root)
lab: $(VENV)/.installed-lab
	$(BIN)/jupyter lab --ServerApp.root_dir=course $(ROOT_ARGS) $(LAB_ARGS)

# Two pytest-xdist workers (the machine has 2 cores); tests/conftest.py says what runs together.
TEST_WORKERS ?= 2
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check lib tests benchmarks autograder

# Regenerate course/ from solutions/ (nbgrader generate_assignment, throwaway gradebook).
release: $(VENV)/.installed-lab
	$(BIN)/attention-release

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench_reference.py

clean-venv:
	rm -rf $(VENV)

# Grade a class (docs/instructors.md): every learner x assignment of SUBMISSIONS, in parallel;
# writes grading-output/ (grades.csv, feedback/, grade-distribution.png, nbgrader/ gradebook).
# SUBMISSIONS: <student>/<assignment>/<notebook>.ipynb, or one <student>.zip/.ipynb each.
.PHONY: grade check
SUBMISSIONS ?=
GRADE_ARGS ?=
grade: $(VENV)/.installed-test
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=<folder> [GRADE_ARGS='--jobs 4 --sandbox']"; exit 2; }
	$(BIN)/attention-grade "$(SUBMISSIONS)" $(GRADE_ARGS)

# Learner self-check: grade your own course/ notebooks with the same grader (never modifies
# them); prints points per notebook and every failing check. NOTEBOOKS=solutions: full marks.
NOTEBOOKS ?= course
CHECK_ARGS ?=
check: $(VENV)/.installed-lab
	$(BIN)/attention-check "$(NOTEBOOKS)" $(CHECK_ARGS)

# A smoke part of the suite on another Python, in its own venv: .ci/run calls it for every
# claimed version (>= 3.11) the machine has, e.g. make smoke PYTHON=python3.13.
SMOKE_TESTS ?= tests/test_reference.py tests/test_reference_single_thread.py \
	tests/test_checks.py tests/test_autograde_roundtrip.py
PY_VERSION = $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
.PHONY: smoke
smoke:
	$(MAKE) --no-print-directory test VENV=.venv-smoke-$(PY_VERSION) \
		PYTEST_ARGS="$(SMOKE_TESTS) -p no:cacheprovider"
