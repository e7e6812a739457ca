"""``nn-course hub demo`` (``make hub-demo``): the course on a hub on 127.0.0.1 with demo users.

Creates an instructor, three students and the grader account, installs, starts the hub and
releases notebook 1; prints how to log in as each and the steps of the cycle. Ctrl-C (or
SIGTERM) stops the hub and removes the users and folders it created.
"""
import shutil
import signal
import tempfile
import time
from pathlib import Path

from .deploy import Settings, init
from .host import Hub, close_paths, create_users, free_port, install, need_root, open_paths, python_paths, \
    remove_users, run_as

# ------------------------------------------------------------------------------ demo
DEMO_USERS = {"instructor": "nn-instructor", "students": ["nn-ada", "nn-ben", "nn-cyd"]}


def demo(deploy_dir=None, port=8000, log=print, wait=True):
    """Users, deployment and hub on 127.0.0.1; notebook 1 released; Ctrl-C removes it all."""
    need_root("nn-course hub demo (it creates Unix users)")
    deploy_dir = Path(deploy_dir or tempfile.mkdtemp(prefix="nn-hub-demo-"))
    scratch = Path(tempfile.mkdtemp(prefix="nn-hub-demo-srv-"))
    scratch.chmod(0o755)
    settings = Settings(str(deploy_dir), instructors=[DEMO_USERS["instructor"]],
                        students=list(DEMO_USERS["students"]), grader="nn-grader",
                        exchange=str(scratch / "exchange"), course_root=str(scratch / "nn-grader-course"),
                        port=port, hub_api_port=free_port(), proxy_api_port=free_port(),
                        service_port=free_port())
    hub = None
    passwords = {}
    opened = open_paths(python_paths(settings), log=log)   # e.g. a clone under /root (0700)
    try:
        init(settings)
        passwords = create_users(settings.users)
        install(settings, log=log)
        hub = Hub(settings)
        run_as(settings, settings.grader, ["nbgrader", "release_assignment", "01_perceptron"],
               cwd=str(settings.course_dir))
        log("\n" + "=" * 78)
        log(f"The course {settings.course_id!r} runs on JupyterHub at {settings.url}/  (Ctrl-C stops it)")
        log(f"  instructor  {settings.instructors[0]:14s} password {passwords[settings.instructors[0]]}")
        for s in settings.students:
            log(f"  student     {s:14s} password {passwords[s]}")
        log(f"  grader acct {settings.grader:14s} password {passwords[settings.grader]}  (runs the formgrader)")
        log(f"Formgrader (instructor): {settings.url}/services/{settings.course_id}/formgrader")
        log("1. Students: Nbgrader > Assignment List > Fetch 01_perceptron, open it, work, Validate, Submit.")
        log(f"2. Instructor: {settings.url}/services/{settings.course_id}/lab (the formgrader's JupyterLab, run by")
        log(f"   {settings.grader}), File > New > Terminal, in the course folder:")
        log("       nbgrader collect 01_perceptron")
        log("       nn-course grade --course . submitted")
        log("   then Nbgrader > Formgrader > Manual Grading for the written answers, and")
        log("       nn-course release-feedback --course . 01_perceptron")
        log("3. Students: Assignment List > Fetch Feedback, then (view feedback).")
        log(f"Deployment files: {deploy_dir}   hub log: {hub.log_path}")
        log("=" * 78)
        if wait:
            stop = []
            signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
            signal.signal(signal.SIGINT, lambda *a: stop.append(1))     # Ctrl-C
            try:
                while not stop and hub.proc.poll() is None:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    finally:
        log("stopping the hub and removing the demo users and folders ...")
        if hub is not None:
            hub.stop(settings.users)
        remove_users(list(passwords))
        close_paths(opened)
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(deploy_dir, ignore_errors=True)
        log("done.")
    return 0
