"""The course on JupyterHub: a deployment written by one command, feedback back through the exchange.

    nn-course hub init DIR [--course-id ID] [--db-url URL] [--exchange PATH] [--instructor NAME]
                           [--grader NAME] [--students a,b,c] [--course-root PATH] [--port N] ...
    nn-course hub install DIR        (root) exchange, course folder, gradebook, permissions
    nn-course hub start DIR          (root) run the hub in the foreground; Ctrl-C stops it
    nn-course hub demo               (root) all of it with demo users on 127.0.0.1 (make hub-demo)
    nn-course release-feedback [--course DIR] [ASSIGNMENT] [--student S]

``hub init`` writes, into DIR, everything an admin reads and installs (see docs/hub.md):
``jupyterhub_config.py`` (authenticator, spawner, groups and roles, the formgrader as a hub
service run by the grader account), ``jupyter/global/nbgrader_config.py`` (exchange,
``path_includes_course``, ``JupyterHubAuthPlugin``), ``jupyter/{student,instructor,grader}/``
(which nbgrader extensions each kind of user gets, and the CSP fix for the formgrader's
iframe), ``course/nbgrader_config.py`` (the course's config with its id and gradebook URL),
``student-site/`` and ``hub.json`` (the settings, for the other commands).

``release-feedback`` returns the feedback that ``nn-course grade``/``report`` wrote (hidden
tests stripped, the grader's notes, the score per exercise) through nbgrader's
``release_feedback``, only where it belongs to the submission the ledger graded last, with
formulas rendered by the MathJax the students' Jupyter server serves (offline), and removes the
feedback of earlier submissions from the exchange.
"""
