"""The instructor's tools: never copied to students, may import the kit, solutions_lib, nbgrader.

In layers, each importing only from the layers below it (``tests/test_architecture.py`` checks):

1. ``nbcells``    where assignments and notebooks are, what kind a cell is, the config loader;
   ``records``    Course, Unit, Flag, Score, Record: the typed grading record and the ledger;
2. ``build``      the release from the source notebooks, verified and validated;
   ``intake``     a submission made gradable (broken JSON, renamed files, split cells ...);
   ``integrity``  the static scan of the student's cells; ``probe`` the re-check's probe;
   ``recheck``    the instructor's notebook with only the student's definitions;
   ``sandbox``    the walls around students' code; ``zygote`` the process that forks kernels;
3. ``nbexec``     nbgrader's execution with our kernels and limits;
   ``feedback``   feedback HTML without the hidden tests;
4. ``worker``     one unit = the documented steps, in order; ``pool`` many units, in parallel;
5. ``report``     grades CSV and the class report; ``synthetic`` a synthetic class and the demo;
   ``cli``        the ``nn-course`` command.

``docs/architecture.md`` is the map for a newcomer.
"""
