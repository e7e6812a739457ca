"""Grading past one machine: on a Dask cluster (``dask_pool``), and in shards merged afterwards.

Each test starts its own Dask scheduler and workers on 127.0.0.1, on free ports
(``dask worker --nthreads 1 --no-nanny``, as docs/distributed.md says), and stops each by its
process id. The class is small (two assignments, a few students, a submission that loops
forever and one that kills its kernel) so that the Dask run can be compared with the local
pool's (``--jobs 2``) unit by unit: the same ledger scores and flags, the same gradebook rows.
"""
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
from nbtools import needs_isolation

from autograder.instructor import build, cli, dask_pool, nbcells, pool, records, sandbox
from autograder.instructor.synthetic import adversaries, answers, classroom


ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = ["02_xor", "05_cosine_denoising"]
LIMITS = sandbox.Limits(cell_timeout=15, notebook_timeout=60)
TIMEOUTS = ["--cell-timeout", "15", "--notebook-timeout", "60"]
HANG = ("def denoiser_step(X, T, W, b, Wy, lr):\n    while True:\n        try:\n            pass\n"
        "        except KeyboardInterrupt:\n            pass\n")
#: A submission that kills its kernel (os._exit) and one that hangs, swallowing the interrupt
#: (synthetic/adversaries.py's endless-loop, moved to notebook 5 to keep the class small).
CASES = [c for c in adversaries.ADVERSARIAL if c.name == "os-exit"] + [dataclasses.replace(
    next(c for c in adversaries.ADVERSARIAL if c.name == "endless-loop"), name="endless-loop",
    assignment="05_cosine_denoising", what="denoiser_step loops forever and swallows the interrupt",
    build=adversaries._replace("05_cosine_denoising", lambda s: {"denoiser_step": HANG}),
    expect={"flags": ["cell-timeout"], "zero": ["test_denoiser_step"], "full": ["test_denoiser_forward"]})]
DASK = Path(sys.executable).parent / "dask"




# ------------------------------------------------------------------------------ the course and the class
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A course of two assignments with its release and gradebook (nbgrader generate_assignment)."""
    needs_isolation()
    return build.scratch_course(tmp_path_factory.mktemp("dask-course"), ASSIGNMENTS, root=ROOT)


@pytest.fixture(scope="module")
def klass(built):
    """(submissions folder, roster): two correct students, a blank one, the hang and the dead kernel."""
    subs = built / "class"
    roster = classroom.make_class(built / "source_notebooks", built / "release", subs, correct=2, blank=1,
                                  bugs=False, assignments=ASSIGNMENTS, cases=CASES)
    return subs, roster


@pytest.fixture(scope="module")
def honest(built):
    """Three students with the reference answers in both assignments (6 units, full marks)."""
    subs = built / "honest"
    for student in ("s1", "s2", "s3"):
        for name in ASSIGNMENTS:
            (src,) = nbcells.notebooks(built / "source_notebooks" / name)
            (rel,) = nbcells.notebooks(built / "release" / name)
            nb = answers.with_answers(nbformat.read(rel, as_version=4), nbformat.read(src, as_version=4))
            classroom.write_submission(subs / student / name, {f"{name}.ipynb": nb})
    return subs


def _copy_of(built, out):
    """A copy of the built course (source, release, config, gradebook) to grade into."""
    shutil.copytree(built / "source_notebooks", out / "source_notebooks")
    shutil.copytree(built / "release", out / "release")
    (out / "course").mkdir()
    for name in ("nbgrader_config.py", "gradebook.db"):
        shutil.copy(built / "course" / name, out / "course")
    return out / "course"


@pytest.fixture(scope="module")
def local_run(built, klass, tmp_path_factory):
    """The class graded by the local pool, two workers: (course, summary)."""
    course_dir = _copy_of(built, tmp_path_factory.mktemp("local"))
    summary = pool.grade(klass[0], course_dir, jobs=2, limits=LIMITS, progress=False, log=lambda *a: None)
    return records.Course(course_dir), summary


def outcome(course):
    """What grading decided, unit by unit, without times: status, scores, flags, diagnosed cells."""
    return {r.key: (r.status, r.fingerprint, {g: (s.kind, s.max, s.nbgrader, s.final) for g, s in r.scores.items()},
                    sorted((f.kind, f.severity, f.cell) for f in r.flags), sorted(r.diagnoses))
            for r in records.ledger_records(course)}


def gradebook_rows(course):
    """{(student, assignment, grade): (auto_score, needs_manual_grade)} and the submissions per student."""
    from nbgrader.api import Gradebook

    rows, submissions = {}, {}
    with Gradebook(course.db_url, course.course_id) as gb:
        for student in gb.students:
            submissions[student.id] = sorted(s.assignment.name for s in student.submissions)
            for sub in student.submissions:
                for nb in sub.notebooks:
                    for g in nb.grades:
                        rows[(student.id, sub.assignment.name, g.name)] = (g.auto_score, g.needs_manual_grade)
    return rows, submissions


# ------------------------------------------------------------------------------ a cluster on loopback
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A Dask scheduler and workers on 127.0.0.1, each a process of its own, stopped by its pid."""

    def __init__(self, folder):
        self.folder, self.workers = Path(folder), {}
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        port = self.address.rsplit(":", 1)[1]
        self.scheduler = self._spawn("scheduler", [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", port,
                                                   "--no-dashboard"])
        self.client().close()

    def _spawn(self, name, argv):
        log = open(self.folder / f"{name}.log", "w")
        return subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=self.folder,
                                start_new_session=True)

    def client(self):
        from distributed import Client

        deadline = time.monotonic() + 60
        while True:
            try:
                return Client(self.address, timeout=5)
            except OSError:
                if time.monotonic() > deadline or self.scheduler.poll() is not None:
                    raise RuntimeError("the Dask scheduler did not start:\n"
                                       + (self.folder / "scheduler.log").read_text()[-2000:]) from None
                time.sleep(0.5)

    def start_workers(self, *names):
        for name in names:
            (self.folder / name).mkdir()
            self.workers[name] = self._spawn(name, [str(DASK), "worker", self.address, "--nthreads", "1", "--no-nanny",
                                                    "--host", "127.0.0.1", "--no-dashboard", "--name", name,
                                                    "--local-directory", str(self.folder / name)])
        with self.client() as client:
            client.wait_for_workers(len([p for p in self.workers.values() if p.poll() is None]), timeout=120)

    def kill(self, name):
        os.kill(self.workers[name].pid, signal.SIGKILL)
        self.workers[name].wait()

    def stop(self):
        for proc in list(self.workers.values()) + [self.scheduler]:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()


def _cluster(folder, request):
    c = Cluster(folder)
    request.addfinalizer(c.stop)
    c.start_workers("w1", "w2")
    return c


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, request):
    """A scheduler and two workers (one thread each), stopped after the module's tests."""
    return _cluster(tmp_path_factory.mktemp("cluster"), request)


@pytest.fixture
def own_cluster(tmp_path, request):
    """A cluster of the test's own (a worker of it is killed), stopped at the end of the test."""
    return _cluster(tmp_path, request)


# ------------------------------------------------------------------------------ the tests
@pytest.mark.slow
@pytest.mark.distributed
def test_dask_grades_like_the_local_pool_also_a_hang_and_a_dead_kernel(built, klass, local_run, cluster, tmp_path):
    local, local_summary = local_run
    course_dir = _copy_of(built, tmp_path / "dask")
    summary = pool.grade(klass[0], course_dir, limits=LIMITS, progress=False, log=lambda *a: None,
                         backend=dask_pool.dask_backend(cluster.address))
    course = records.Course(course_dir)
    assert summary.failed == [] and local_summary.failed == []
    assert summary.graded == local_summary.graded and summary.isolated
    assert outcome(course) == outcome(local)
    assert gradebook_rows(course) == gradebook_rows(local)
    roster, graded = klass[1], {(r.student, r.assignment): r for r in records.ledger_records(course)}
    assert classroom.check(roster, graded, course.assignments, course) == []   # the hang, the dead kernel
    kinds = {r.student: {f.kind for f in r.flags} for r in graded.values() if r.student.startswith("adv-")}
    assert "cell-timeout" in kinds["adv-endless-loop"] and "dead-kernel" in kinds["adv-os-exit"]
    for r in graded.values():             # the files came back with the records
        if r.status == "graded":
            assert course.autograded_notebook(r).is_file(), r.key
            assert (course.root / "feedback" / r.student / r.assignment / f"{Path(r.notebook).stem}.html").is_file()
    again = pool.grade(klass[0], course_dir, limits=LIMITS, progress=False, log=lambda *a: None,
                       backend=dask_pool.dask_backend(cluster.address))
    assert again.graded == 0 and again.skipped == len(graded) and again.reconciled == []


def _all_full(course, subs):
    rows, submissions = gradebook_rows(course)
    students = sorted(p.name for p in Path(subs).iterdir())
    assert sorted(submissions) == students and all(v == ASSIGNMENTS for v in submissions.values()), submissions
    tests = [(k, v) for k, v in rows.items() if k[2].startswith("test_")]
    maxima = {}
    for r in records.ledger_records(course):
        for g, s in r.tests.items():
            maxima[(r.student, r.assignment, g)] = s.max
            assert s.full, (r.key, g, s)
    assert tests and all(v == (maxima[k], False) for k, v in tests), tests


@pytest.mark.slow
@pytest.mark.distributed
def test_a_dask_worker_killed_mid_run_loses_and_duplicates_nothing(built, honest, own_cluster, tmp_path):
    cluster = own_cluster
    course_dir = _copy_of(built, tmp_path / "c")
    course = records.Course(course_dir)
    done = {}
    runner = threading.Thread(target=lambda: done.update(summary=pool.grade(
        honest, course_dir, limits=LIMITS, progress=False, log=lambda *a: None,
        backend=dask_pool.dask_backend(cluster.address))))
    runner.start()
    victim = None
    with cluster.client() as client:
        deadline = time.monotonic() + 180
        while victim is None and time.monotonic() < deadline:
            if list(course.ledger.glob("*/*.json")):          # the grading workers are warm
                names = {a: w["name"] for a, w in client.scheduler_info()["workers"].items()}
                busy = [names[a] for a, keys in client.processing().items() if keys and a in names]
                victim = busy[0] if busy else None
            time.sleep(0.1)
        assert victim, "no worker was ever busy"
        first = len(list(course.ledger.glob("*/*.json")))
        cluster.kill(victim)                                 # kill -9, in the middle of a unit
    runner.join(timeout=300)
    assert not runner.is_alive()
    summary = done["summary"]
    assert first < 6, "killed in the middle"
    assert summary.failed == [] and summary.graded == 6, (summary.failed, summary.graded)
    assert len(records.ledger_records(course)) == 6
    _all_full(course, honest)


@pytest.mark.slow
@pytest.mark.distributed
def test_a_killed_coordinator_rerun_grades_only_what_is_missing(built, honest, cluster, tmp_path):
    course_dir = _copy_of(built, tmp_path / "c")
    course = records.Course(course_dir)
    proc = subprocess.Popen([sys.executable, "-m", "autograder.instructor.cli", "grade", str(honest), "--course",
                             str(course_dir), "--scheduler", cluster.address, "--no-progress"] + TIMEOUTS,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while not list(course.ledger.glob("*/*.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)                        # the coordinator only; the cluster goes on
    proc.wait()
    first = len(list(course.ledger.glob("*/*.json")))
    assert 1 <= first < 6, "killed in the middle"
    summary = pool.grade(honest, course_dir, limits=LIMITS, progress=False, log=lambda *a: None,
                         backend=dask_pool.dask_backend(cluster.address))
    assert summary.failed == [] and summary.skipped == first and summary.graded == 6 - first
    assert len(records.ledger_records(course)) == 6
    _all_full(course, honest)


@pytest.mark.slow
@pytest.mark.distributed
def test_two_shards_merged_equal_one_run(built, klass, local_run, tmp_path, capsys):
    local, _ = local_run
    shards = [_copy_of(built, tmp_path / f"shard{k}") for k in (1, 2)]
    procs = [subprocess.Popen([sys.executable, "-m", "autograder.instructor.cli", "grade", str(klass[0]), "--course",
                               str(course_dir), "--shard", f"{k}/2", "--jobs", "1", "--no-progress"] + TIMEOUTS,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for k, course_dir in enumerate(shards, 1)]                # as two machines would, at once
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out
    keys = [set(outcome(records.Course(c))) for c in shards]
    assert keys[0] and keys[1] and not keys[0] & keys[1], "two shares, disjoint, neither empty"
    assert keys[0] | keys[1] == set(outcome(local))
    target = _copy_of(built, tmp_path / "merged")
    assert cli.main(["merge", str(shards[0]), str(shards[1] / "grading" / "ledger"), "--course", str(target)]) == 0
    merged = records.Course(target)
    assert outcome(merged) == outcome(local)
    assert gradebook_rows(merged) == gradebook_rows(local)
    from_course = [r for r in records.ledger_records(merged) if r.key in keys[0] and r.status == "graded"]
    assert from_course and all(merged.autograded_notebook(r).is_file() for r in from_course)
    assert cli.main(["merge", str(tmp_path / "nowhere"), "--course", str(target)]) == 1
    assert "neither a course folder" in capsys.readouterr().err


def test_shards_are_stable_and_bad_input_says_what_to_do(capsys):
    keys = [f"0{a}_x/student{i}" for a in range(1, 4) for i in range(40)]
    shares = [pool.shard_of(k, 3) for k in keys]
    assert shares == [pool.shard_of(k, 3) for k in keys] and set(shares) == {0, 1, 2}
    with pytest.raises(SystemExit):
        cli.main(["grade", "x", "--shard", "3/2"])
    assert "1 <= K <= N" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["grade", "x", "--shard", "two"])
    assert "give K/N" in capsys.readouterr().err
