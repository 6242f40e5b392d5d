"""One exception family, rooted in AutograderError, and the CLI's named exit codes."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0  # grading completed (whatever the score) / check and validate passed
    FAILED = 1  # `check` found failing tests, `validate` found a problem, template drift
    HARNESS_ERROR = 2  # the harness or a hidden suite broke; results.json still written
    USAGE = 3  # bad command line or configuration


class AutograderError(Exception):
    """Root of every error the harness raises on purpose."""


class ConfigError(AutograderError):
    """A command line or the files it names are wrong (bad usage)."""


class CourseError(ConfigError):
    """The course's own files are wrong (assignment.toml, the hidden suite, mutants, solution
    markers): staff must fix them, so for grading this is a harness error, not bad usage."""


class AuthoringError(CourseError):
    """A hidden test asked for something the assignment does not have: a module that is not
    one of its modules, a probe that does not exist, a tensor that cannot be built. Raised
    by the grader before the worker is asked, so it is never blamed on the student."""


class SubmissionError(AutograderError):
    """A submission cannot be used as given (message names the file and the fix)."""


class CodecError(AutograderError):
    """A value or message cannot cross the grader/worker boundary."""


class SandboxError(AutograderError):
    """The sandbox could not be set up."""


class StudentError(AutograderError):
    """The student's code raised, timed out or killed its worker.

    Carries the exception's type name, message and a traceback trimmed to the
    student's files; never the exception object itself (it lives in the worker).
    """

    def __init__(self, type_name: str, message: str, student_traceback: str = "",
                 where: str = "", *, import_of: str | None = None) -> None:
        self.type_name = type_name
        self.message = message
        self.student_traceback = student_traceback
        self.where = where  # the call that failed, e.g. "layers.affine_forward"
        # The module whose import failed, when the error came from importing it (the
        # plugin then names the import once instead of every test's hint).
        self.import_of = import_of
        super().__init__(f"{type_name}: {message}" if message else type_name)

    def __str__(self) -> str:
        text = f"{self.type_name}: {self.message}" if self.message else self.type_name
        if self.student_traceback:
            text += "\n" + self.student_traceback.rstrip()
        return text


class StudentTimeout(StudentError):
    """A call into student code exceeded its wall-time limit."""


class WorkerDied(StudentError):
    """The worker process ended during a call (crash, exit, resource limit)."""


class UnusableValue(StudentError):
    """The grader tried to use a value of the student's code that stayed in the worker (an
    array of strings, an object of the student's class) as a number, array or truth value.

    Not a TypeError: numpy and pytest.approx catch TypeError and try something else, where
    this must fail the test with its message.
    """
