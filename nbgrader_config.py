"""nbgrader configuration for the course (nbgrader 0.9).

The instructor's notebooks (with solutions and hidden tests) live in ``solutions/<assignment>/``;
``nbgrader generate_assignment`` writes the student versions to ``exercises/<assignment>/``.
See README.md, "For instructors". The grading rules (cell timeout, stderr, output limits, the
feedback's preprocessors) are not written here: they are ``convnets.grading.rules``, the same
definition ``convnets-grade`` uses, so ``nbgrader autograde`` run by hand grades by the same rules.
"""
import os
import sys

c = get_config()  # noqa: F821 - provided by nbgrader

# The course is this folder, wherever it is checked out (or copied, as the tests do).
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.course_id = "convnets"

# the checkout's own library first (its preprocessors are named in the rules), else the installed one
_src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "src")
if os.path.isfile(os.path.join(_src, "convnets", "grading", "rules.py")) and _src not in sys.path:
    sys.path.insert(0, _src)
from convnets.grading import rules  # noqa: E402

rules.apply(c)
