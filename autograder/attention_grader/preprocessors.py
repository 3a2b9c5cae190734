"""The course's nbgrader preprocessors, named in ``autograder/nbgrader_config.py``.

``Autograde.autograde_preprocessors`` runs :class:`GraderExecute` and :class:`StderrAsText` in
place of nbgrader's ``Execute``; ``GenerateFeedback.preprocessors`` runs
:class:`ScrubHiddenTests` before nbgrader's ``ClearHiddenTests``. Every nbgrader command that
reads that configuration (``make grade``, ``make check``, ``nbgrader autograde`` in the
exchange flow, Formgrader) grades with the same pipeline.

- :class:`GraderExecute` — nbgrader's ``Execute``, except that a kernel that dies (``os._exit``,
  a segfault, the memory limit) or stops answering after a timeout no longer aborts the whole
  notebook: the cells run before it keep their grades, and the cell that killed the kernel and
  every later graded cell get an error output saying why (so they score 0 instead of the
  notebook failing, or worse, unexecuted test cells scoring full marks).
- :class:`StderrAsText` — nbgrader scores a test cell 0 if *anything* appears on stderr. In this
  course a test cell fails by raising (``CheckFailed``), so stderr from a learner's correct
  function (a ``logging`` handler, a library warning) is relabelled as ordinary text: still
  shown in the feedback, no longer a failure.
- :class:`ScrubHiddenTests` — runs before nbgrader's ``ClearHiddenTests`` when feedback is
  generated: the source of hidden tests is removed by ``ClearHiddenTests``, but a traceback
  (a timeout, a ``NameError``) can quote the hidden line being run. This removes any output line
  that quotes hidden test code.
"""

from __future__ import annotations

import re

from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import Execute
from traitlets import Bool

from .paths import split_hidden

#: ``ename`` of the error outputs this module adds (the grade extraction looks for them).
KERNEL_DIED = "KernelDied"
KERNEL_UNRESPONSIVE = "KernelUnresponsive"
CELL_TIMEOUT = "CellTimeoutError"  # nbgrader's own, from Execute.error_on_timeout

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _error_output(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(
        output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]
    )


class GraderExecute(Execute):
    """nbgrader's Execute that survives a dead or stuck kernel (see the module docstring)."""

    def preprocess(self, nb, resources=None, km=None):
        # Same steps as nbconvert's ExecutePreprocessor.preprocess, one cell at a time.
        NotebookClient.__init__(self, nb, km)
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        with self.setup_kernel():
            info_msg = self.wait_for_reply(self.kc.kernel_info())
            if info_msg:
                self.nb.metadata["language_info"] = info_msg["content"]["language_info"]
            for index, cell in enumerate(self.nb.cells):
                try:
                    self.preprocess_cell(cell, resources, index)
                except DeadKernelError:
                    self._fail_from(
                        index,
                        KERNEL_DIED,
                        (
                            "the kernel died while this cell ran (os._exit, a crash, or the memory "
                            "limit); every later test cell scores 0"
                        ),
                    )
                    break
                except CellTimeoutError:
                    # No output for too long (nbgrader sets raise_on_iopub_timeout): a timeout
                    # of this cell, not of the notebook.
                    cell.setdefault("outputs", []).append(
                        _error_output(CELL_TIMEOUT, "the cell did not finish within the time limit")
                    )
                if self._timed_out(cell) and not self._responsive():
                    self._fail_from(
                        index + 1,
                        KERNEL_UNRESPONSIVE,
                        (
                            "the kernel did not respond after the previous cell was interrupted "
                            "for exceeding the time limit; later test cells score 0"
                        ),
                    )
                    break
        self.set_widgets_metadata()
        return self.nb, self.resources

    @staticmethod
    def _timed_out(cell) -> bool:
        return cell.cell_type == "code" and any(
            o.get("output_type") == "error" and o.get("ename") == CELL_TIMEOUT
            for o in cell.get("outputs", [])
        )

    def _responsive(self) -> bool:
        """After an interrupted timeout: does the kernel answer a kernel_info request?"""
        saved = self.timeout
        self.timeout = 15
        try:
            return self.wait_for_reply(self.kc.kernel_info()) is not None
        except Exception:  # noqa: BLE001 - a dead kernel is an unresponsive one
            return False
        finally:
            self.timeout = saved

    def _fail_from(self, start: int, ename: str, evalue: str) -> None:
        """Error output on cell ``start`` (it was running) and every later graded code cell."""
        for index, cell in enumerate(self.nb.cells[start:], start):
            if cell.cell_type != "code":
                continue
            if index == start and ename == KERNEL_DIED:
                cell.setdefault("outputs", []).append(_error_output(ename, evalue))
            elif utils.is_grade(cell):
                cell.setdefault("outputs", []).append(
                    _error_output(
                        ename,
                        (
                            "this test did not run: the kernel died in an earlier cell"
                            if ename == KERNEL_DIED
                            else evalue
                        ),
                    )
                )
        self.log.warning("%s: %s", ename, evalue)


class StderrAsText(Preprocessor):
    """Relabel stderr in graded code cells as stdout, marked ``[stderr]`` (module docstring)."""

    enabled = Bool(True).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and utils.is_grade(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
                    text = output.get("text", "")
                    output["text"] = "".join(
                        f"[stderr] {line}" for line in text.splitlines(keepends=True)
                    )
        return cell, resources


def hidden_lines(source: str) -> list[str]:
    """The non-empty lines between BEGIN/END HIDDEN TESTS markers of a cell's source."""
    return [line.strip() for line in split_hidden(source)[1] if line.strip()]


def secrets_of(sources) -> list[str]:
    """What must not appear in feedback: hidden test lines and the markers around them."""
    found = sorted({line for source in sources for line in hidden_lines(source)})
    # Fragments too short to be telling ("x = 1") would blank unrelated output lines.
    found = [line for line in found if len(line) >= 12]
    return [*found, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"] if found else []


def scrub_text(text: str, secrets: list[str]) -> str:
    """Drop every line of ``text`` that quotes one of the hidden lines."""
    if not secrets:
        return text
    kept = []
    for line in text.splitlines(keepends=True):
        plain = strip_ansi(line)
        if any(secret in plain for secret in secrets):
            kept.append(
                "(a line of a hidden test, not shown)\n"
                if line.endswith("\n")
                else "(a line of a hidden test, not shown)"
            )
        else:
            kept.append(line)
    return "".join(kept)


class ScrubHiddenTests(Preprocessor):
    """Remove quotes of hidden test code from outputs (run before ClearHiddenTests)."""

    enabled = Bool(True).tag(config=True)

    def preprocess(self, nb, resources):
        secrets = secrets_of(cell.source for cell in nb.cells)
        if secrets:
            for cell in nb.cells:
                for output in cell.get("outputs", []):
                    scrub_output(output, secrets)
        return nb, resources


def scrub_output(output, secrets: list[str]) -> None:
    if output.get("output_type") == "error":
        output["traceback"] = [scrub_text(entry, secrets) for entry in output.get("traceback", [])]
        output["evalue"] = scrub_text(output.get("evalue", ""), secrets)
    elif output.get("output_type") == "stream":
        output["text"] = scrub_text(output.get("text", ""), secrets)
    for key, value in list(output.get("data", {}).items()):
        if isinstance(value, str) and key.startswith("text/"):
            output["data"][key] = scrub_text(value, secrets)
