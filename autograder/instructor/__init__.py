"""The instructor's tools: never copied to students, may import the kit, solutions_lib, nbgrader.

In layers, each importing only from the layers below it (``tests/test_architecture.py`` checks):

1. ``nbcells``    where assignments and notebooks are, what kind a cell is, the config loader;
   ``records``    Course, Unit, Flag, Score, Record: the typed grading record and the ledger;
2. ``build``      the release from the source notebooks, verified and validated;
   ``intake``     a submission made gradable (broken JSON, renamed files, split cells ...);
   ``integrity``  the static scan of the student's cells (evidence for a human);
   ``sandbox``    the walls around students' code; ``zygote`` the process that forks kernels;
3. ``nbexec``     the kernels and the preprocessors around the execution;
   ``feedback``   feedback HTML without the hidden tests;
   ``split``      the execution: student cells in a student process, tests in a grader process
                  (``wire``, ``agent`` and ``proxy`` run inside the kernels, ``execute`` drives them);
4. ``worker``     one unit = the documented steps, in order; ``pool`` many units, in parallel;
5. ``report``     grades CSV and the class report; ``synthetic`` a synthetic class and the demo;
   ``cli``        the ``nn-course`` command.

``docs/architecture.md`` is the map for a newcomer.
"""
