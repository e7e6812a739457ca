"""nbgrader configuration of the course. Run nbgrader's commands from this folder.

    cd course
    nbgrader generate_assignment 01_perceptron     # source_notebooks/ -> release/
    nbgrader validate ../release/01_perceptron/01_perceptron.ipynb
    nbgrader autograde 01_perceptron               # submitted/<student>/01_perceptron/

The instructor's command `nn-course build` (or `make release`) runs generate_assignment for
every assignment and then verifies the result; prefer it to building by hand.

Folders: the source notebooks and the release live at the top of the repository (they are
committed); the gradebook and nbgrader's working folders (submitted/, autograded/, feedback/)
live here and are ignored by git.
"""
import os

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

HERE = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.course_id = "nn-foundations"
c.CourseDirectory.root = HERE
c.CourseDirectory.source_directory = os.path.join("..", "source_notebooks")
c.CourseDirectory.release_directory = os.path.join("..", "release")
# The gradebook: SQLite next to this file by default. Several graders can share one
# database server instead, for example "postgresql://user@host/nn_course".
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(HERE, "gradebook.db")

# Execution limits. One test cell may run a gradient check of an MNIST-sized layer; none
# needs more than a few seconds, so a cell that takes a minute is stuck (an endless loop).
c.Execute.timeout = 60
c.Execute.startup_timeout = 60
c.Execute.interrupt_on_timeout = True

# A student who deletes a graded cell still gets it back (and loses only its points).
c.OverwriteCells.add_missing_cells = True

# Generated assignments: the stub left in place of a solution.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
