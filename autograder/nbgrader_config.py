"""nbgrader configuration for the course.

Run nbgrader from this folder (nbgrader has no --config flag), or point
JUPYTER_CONFIG_DIR / JUPYTER_CONFIG_PATH at it. Folders:

- ../solutions/<assignment>/<notebook>.ipynb  hand-written source (nbgrader's "source")
- ../course/<assignment>/<notebook>.ipynb     generated learner version (nbgrader's "release")
- submitted/, autograded/, feedback/ here     created by grading, never committed

The grading pipeline is declared here, once, with nbgrader's own ``List`` traits; the course's
preprocessors come from the installed ``attention_grader`` package (``pip install -e .``).
Every nbgrader command that reads this file (``make grade``, ``make check``, ``nbgrader
autograde`` in the exchange flow, Formgrader) grades the same way.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent

c = get_config()  # noqa: F821 - injected by traitlets when nbgrader loads this file

c.CourseDirectory.course_id = "attention-from-scratch"
c.CourseDirectory.root = str(HERE)
c.CourseDirectory.source_directory = "../solutions"
c.CourseDirectory.release_directory = "../course"
c.CourseDirectory.db_url = f"sqlite:///{HERE / 'gradebook.db'}"

# Learner-facing stubs.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Released notebooks carry no outputs, widget state or execution timestamps: nbgrader's own
# release steps, then nbconvert's metadata cleaner (nbgrader keeps metadata.widgets otherwise).
c.GenerateAssignment.preprocessors = [
    "nbgrader.preprocessors.IncludeHeaderFooter",
    "nbgrader.preprocessors.InstantiateTests",
    "nbgrader.preprocessors.LockCells",
    "nbgrader.preprocessors.ClearSolutions",
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.CheckCellMetadata",
    "nbgrader.preprocessors.ComputeChecksums",
    "nbgrader.preprocessors.SaveCells",
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbgrader.preprocessors.ClearMarkScheme",
    "nbgrader.preprocessors.ComputeChecksums",
    "nbgrader.preprocessors.CheckCellMetadata",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
]
c.ClearMetadataPreprocessor.enabled = True
c.ClearMetadataPreprocessor.clear_cell_metadata = False
c.ClearMetadataPreprocessor.clear_notebook_metadata = True
c.ClearMetadataPreprocessor.preserve_nb_metadata_mask = {
    ("kernelspec",),
    ("language_info", "name"),
}

# Grading: a learner's infinite loop is stopped, and a crashing cell does not stop the rest.
c.ExecutePreprocessor.timeout = 120
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True
# (nbgrader's Execute always continues after an error: allow_errors is fixed to True and
# not configurable; setting it only printed a warning into every grading log.)
# Restore deleted test cells instead of scoring them 0 (nbgrader's default scores a deleted
# test cell 0 when it cannot put it back).
c.OverwriteCells.add_missing_cells = True

# Autograde, step 1 (sanitize the submission): nbgrader 0.9.6's defaults, written out.
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "nbgrader.preprocessors.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# Autograde, step 2 (run and score): nbgrader 0.9.6's defaults, with its Execute replaced by
# GraderExecute (a dead or stuck kernel scores the remaining tests 0 instead of stopping the
# notebook) followed by StderrAsText (stderr in a test cell is shown, not a failure: checks
# fail by raising).
c.Autograde.autograde_preprocessors = [
    "attention_grader.preprocessors.GraderExecute",
    "attention_grader.preprocessors.StderrAsText",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# Feedback never shows the hidden tests: ScrubHiddenTests removes output lines that quote
# them (a traceback can), then nbgrader's ClearHiddenTests removes them from the sources.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "attention_grader.preprocessors.ScrubHiddenTests",
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
