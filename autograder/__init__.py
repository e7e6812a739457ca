"""What students and instructors get besides the notebooks.

Student-facing (copied into every release assignment by the build; no solution inside):
``autograder.checks``   the checks the notebooks' test cells call
``autograder.datasets`` MNIST (embedded 5k subset or full 70k from IDX files), 8×8 digits, the
                        noisy cosines
``autograder.widgets``  sliders that redraw a figure, with a one-line note while a function
                        they need is not written yet

Instructor tooling:
``autograder.build``    build release/ from source_notebooks/ with nbgrader, and verify it
``autograder.cli``      the ``nn-course`` command

The student-facing modules import neither the instructor tooling nor the reference solutions.
"""
