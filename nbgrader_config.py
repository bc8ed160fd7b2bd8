"""nbgrader configuration for the course (nbgrader 0.9).

The instructor's notebooks (with solutions and hidden tests) live in ``solutions/<assignment>/``;
``nbgrader generate_assignment`` writes the student versions to ``exercises/<assignment>/``.
See README.md, "For instructors".
"""
import os

c = get_config()  # noqa: F821 - provided by nbgrader

# The course is this folder, wherever it is checked out (or copied, as the tests do).
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.course_id = "convnets"

# A torch UserWarning on stderr must not score a test cell zero.
c.ClearOutput.enabled = True
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r".*(UserWarning|DeprecationWarning|FutureWarning).*"

# A deleted test cell comes back when grading, instead of staying "needs manual grade" forever.
c.OverwriteCells.add_missing_cells = True

# Tracebacks and long outputs stay readable in the feedback.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 60

# Hidden tests never appear in the feedback a student receives.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "nbgrader.preprocessors.ClearHiddenTests",
]

# Student notebooks run for at most this many seconds per cell.
c.ExecutePreprocessor.timeout = 300
