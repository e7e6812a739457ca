"""The student kit: the checks the test cells call, the data loaders, the widgets.

Every module directly in this folder is the kit (``checks``, ``datasets``, ``widgets``, and
this ``__init__``): ``nn-course build`` copies them into each assignment as its own
``autograder/`` folder, and grading puts the originals back over a student's copy, so an
edited copy changes nothing (a fresh build replaces it). Nothing here holds a solution, and
nothing here imports the instructor's tools (``autograder/instructor/``, never copied),
nbgrader or the reference solutions: a test checks it.
"""
