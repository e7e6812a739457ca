"""Due dates, late penalties and extensions: ``course/deadlines.yml``.

The file (next to ``nbgrader_config.py``; without it no late penalty is taken off, and the due
dates set with nbgrader's own tools stay)::

    timezone: Europe/Berlin          # for every date below written without an offset
    policy:                          # the late policy of every assignment ...
      percent_per_day: 10            #   % of the notebook's score taken off per started day late
      max_days: 5                    #   later than this many days: 0 points
    assignments:
      01_perceptron:
        due: 2026-10-16 23:59
      08_generalisation:
        due: 2027-01-29 23:59
        cutoff: 2027-01-31 23:59     # optional hard cutoff: a submission after it gets 0 points
        policy: {percent_per_day: 20, max_days: 2}   # ... unless the assignment has its own
    extensions:                      # per student and assignment
      alice:
        01_perceptron: 2 days        # or "36 hours", or a date: her own due date

An extension moves the student's due date and cutoff by the same amount. A submission
``s`` seconds after its (extended) due date loses ``percent_per_day`` % of its score per
started day (``ceil(s / 86400)`` days: 1.5 days late is 2 days, 20 %), all of it past
``max_days`` or the cutoff. nbgrader applies it (``latepenalty.DeadlinePenalty``, its
late-submission plugin) from the gradebook's due date, the submission's ``timestamp.txt`` and
its extension, which ``write_to_gradebook`` puts there before every autograde.

- ``load(path, assignments)``: the file as ``Deadlines`` (a ``DeadlineError`` that says what to
  fix when it is malformed);
- ``Deadlines.for_unit(assignment, student)``: the ``Deadline`` of one submission (None: the
  assignment has no due date); its ``key()`` goes into the unit's fingerprint, so that a
  changed due date or extension regrades exactly the units it concerns;
- ``Deadline.fraction(seconds_late)``: the share of the score taken off; ``explain``: why, in
  words for the student.

Imports only the standard library and PyYAML (nbgrader's only inside ``write_to_gradebook``).
"""
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from .nbcells import CourseError

#: Where the course keeps it: next to nbgrader_config.py.
FILE_NAME = "deadlines.yml"
DAY = 86400.0
EXAMPLE = "for example `due: 2026-10-16 23:59`"


class DeadlineError(CourseError):
    """The deadlines file is malformed; the message says where and what to write instead."""


@dataclass(frozen=True)
class Policy:
    """``percent_per_day`` % off per started day late; past ``max_days`` (None: never) 0 points."""
    percent_per_day: float = 0.0
    max_days: float = None

    def text(self):
        if self.percent_per_day == 0 and self.max_days is None:
            return "no penalty for late submissions"
        per = (f"{self.percent_per_day:g} % of the score per started day late" if self.percent_per_day
               else "no penalty")
        return per + (f", at most {self.max_days:g} days; later, 0 points" if self.max_days is not None else "")


@dataclass(frozen=True)
class Deadline:
    """The effective deadline of one submission: the assignment's due date (aware), the
    student's extension, the hard cutoff (aware or None) and the policy."""
    due: datetime
    policy: Policy
    cutoff: datetime = None
    extension: timedelta = timedelta(0)
    timezone: str = "UTC"

    @property
    def effective_due(self):
        return self.due + self.extension

    @property
    def effective_cutoff(self):
        return self.cutoff + self.extension if self.cutoff is not None else None

    def key(self):
        """What a grade depends on, as a string (for the unit's fingerprint)."""
        return (f"due={self.due.astimezone(timezone.utc).isoformat()};ext={self.extension.total_seconds()};"
                f"cutoff={self.cutoff and self.cutoff.astimezone(timezone.utc).isoformat()};"
                f"pct={self.policy.percent_per_day};max={self.policy.max_days}")

    def days_late(self, seconds_late):
        """Started days late (0 when on time): 1 second late is 1 day, 1.5 days are 2."""
        return math.ceil(seconds_late / DAY) if seconds_late > 0 else 0

    def past_limit(self, seconds_late):
        """'cutoff' or 'max-days' when the submission gets 0 points, else ''."""
        if seconds_late <= 0:
            return ""
        cutoff = self.effective_cutoff
        if cutoff is not None and self.effective_due + timedelta(seconds=seconds_late) > cutoff:
            return "cutoff"
        if self.policy.max_days is not None and seconds_late > self.policy.max_days * DAY:
            return "max-days"
        return ""

    def fraction(self, seconds_late):
        """The share (0 to 1) of the notebook's score taken off for being ``seconds_late`` late."""
        if seconds_late <= 0:
            return 0.0
        if self.past_limit(seconds_late):
            return 1.0
        return min(1.0, self.policy.percent_per_day * self.days_late(seconds_late) / 100)

    def penalty(self, score, seconds_late):
        """Points taken off a notebook that scored ``score`` (rounded to 1e-6, never above it)."""
        return min(score, round(score * self.fraction(seconds_late), 6)) if score > 0 else 0.0

    def local(self, moment):
        """``moment`` in the course's time zone, as students read it."""
        local = moment.astimezone(_zone(self.timezone))
        offset = f"{local:%z}"
        return f"{local:%A %d %B %Y, %H:%M} ({self.timezone}, UTC{offset[:3]}:{offset[3:]})"

    def describe(self):
        """The due date and policy in a sentence (the release's header and README)."""
        text = f"due {self.local(self.effective_due)}. Late policy: {self.policy.text()}"
        if self.cutoff is not None:
            text += f"; hard cutoff {self.local(self.effective_cutoff)}: a submission after it gets 0 points"
        return text + "."


@dataclass
class Deadlines:
    """The whole file: {assignment: Deadline without extension}, {student: {assignment: timedelta}}."""
    assignments: dict = field(default_factory=dict)
    extensions: dict = field(default_factory=dict)
    path: str = ""
    present: bool = False                # is there a file? (without one the gradebook's due dates stay)

    def for_unit(self, assignment, student):
        """The Deadline of ``student``'s submission of ``assignment`` (None: no due date)."""
        base = self.assignments.get(assignment)
        if base is None:
            return None
        extension = self.extensions.get(student, {}).get(assignment, timedelta(0))
        return Deadline(base.due, base.policy, base.cutoff, extension, base.timezone)


# ------------------------------------------------------------------------------ the file
def load(path, assignments=None):
    """The deadlines file at ``path`` as ``Deadlines`` (empty when there is no file).

    ``assignments``: the course's assignment names; the file may name no other. Raises
    DeadlineError saying what to fix.
    """
    path = Path(path)
    if not path.is_file():
        return Deadlines(path=str(path))
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise DeadlineError(f"{path} is not valid YAML: {err}".strip()) from None
    result = parse(data or {}, assignments, where=str(path))
    result.present = True
    return result


def parse(data, assignments=None, where=FILE_NAME):
    """``Deadlines`` from the file's content (a dict); see ``load``."""
    def fail(message):
        raise DeadlineError(f"{where}: {message}")

    if not isinstance(data, dict):
        fail("expected keys timezone, policy, assignments, extensions at the top of the file")
    _only(data, ("timezone", "policy", "assignments", "extensions"), "the top of the file", fail)
    tz_name = data.get("timezone", "UTC")
    if not isinstance(tz_name, str):
        fail(f"timezone must be a name such as Europe/Berlin or UTC, not {tz_name!r}")
    try:
        _zone(tz_name)
    except (ValueError, KeyError, OSError):
        fail(f"unknown timezone {tz_name!r}: write an IANA name such as Europe/Berlin or UTC "
             "(on a machine without /usr/share/zoneinfo, pip install tzdata)")
    default = _policy(data.get("policy", {}), "policy", fail)
    entries = data.get("assignments") or {}
    if not isinstance(entries, dict):
        fail("assignments must map assignment names to {due: ...}, e.g. `01_perceptron: {due: 2026-10-16 23:59}`")
    known = list(assignments) if assignments is not None else None
    result = Deadlines(path=where)
    for name, entry in entries.items():
        name = _name(name, "assignment", fail)
        if known is not None and name not in known:
            fail(f"assignments: {name!r} is not an assignment of this course (there are {', '.join(known)})")
        if not isinstance(entry, dict) or "due" not in entry:
            fail(f"assignments: {name}: write its due date, {EXAMPLE}")
        _only(entry, ("due", "cutoff", "policy"), f"assignments: {name}", fail)
        due = _moment(entry["due"], tz_name, f"assignments: {name}: due", fail)
        cutoff = _moment(entry["cutoff"], tz_name, f"assignments: {name}: cutoff", fail) \
            if entry.get("cutoff") is not None else None
        if cutoff is not None and cutoff < due:
            fail(f"assignments: {name}: the cutoff ({cutoff.isoformat()}) is before the due date ({due.isoformat()})")
        policy = _policy(entry["policy"], f"assignments: {name}: policy", fail) if "policy" in entry else default
        result.assignments[name] = Deadline(due, policy, cutoff, timezone=tz_name)
    extensions = data.get("extensions") or {}
    if not isinstance(extensions, dict):
        fail("extensions must map students to {assignment: extension}, e.g. `alice: {01_perceptron: 2 days}`")
    for student, given in extensions.items():
        student = _name(student, "student", fail)
        if not isinstance(given, dict):
            fail(f"extensions: {student}: map assignments to extensions, e.g. `01_perceptron: 2 days`")
        for name, value in given.items():
            name = _name(name, "assignment", fail)
            if name not in result.assignments:
                fail(f"extensions: {student}: {name!r} has no due date in assignments (add one, or remove the extension)")
            what = f"extensions: {student}: {name}"
            result.extensions.setdefault(student, {})[name] = _extension(value, result.assignments[name], tz_name,
                                                                         what, fail)
    return result


def _only(entry, allowed, where, fail):
    unknown = [k for k in entry if k not in allowed]
    if unknown:
        fail(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(allowed)})")


def _name(value, what, fail):
    if not isinstance(value, str):
        fail(f"the {what} name {value!r} is not text: put it in quotes (YAML reads no, yes, on, off "
             "and numbers as other things), e.g. \"no\": ...")
    return value


def _zone(name):
    if name.upper() == "UTC":
        return timezone.utc
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _moment(value, tz_name, where, fail):
    """An aware datetime from a YAML value: a datetime, or text like 2026-10-16 23:59[+02:00]."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date) or (isinstance(value, str) and ":" not in value):
        fail(f"{where}: {value!r} has no time of day: write one, {EXAMPLE}")
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            fail(f"{where}: {value!r} is not a date and time: write YYYY-MM-DD HH:MM, optionally with an offset "
                 f"(+02:00), {EXAMPLE}")
    else:
        fail(f"{where}: {value!r} is not a date and time: {EXAMPLE}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(tz_name))
    return moment


def _policy(value, where, fail):
    if not isinstance(value, dict):
        fail(f"{where} must be a mapping, e.g. `{{percent_per_day: 10, max_days: 5}}`")
    _only(value, ("percent_per_day", "max_days"), where, fail)
    percent, max_days = value.get("percent_per_day", 0), value.get("max_days")
    if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 <= percent <= 100:
        fail(f"{where}: percent_per_day must be a number from 0 to 100 (10 means 10 % per started day), "
             f"not {percent!r}")
    if max_days is not None and (isinstance(max_days, bool) or not isinstance(max_days, (int, float))
                                 or max_days < 0):
        fail(f"{where}: max_days must be a number of days (0 or more), not {max_days!r}")
    return Policy(float(percent), None if max_days is None else float(max_days))


def _extension(value, base, tz_name, where, fail):
    """A timedelta from `2 days`, `36 hours`, a number (days) or a date (the student's due date)."""
    if isinstance(value, bool):
        fail(f"{where}: {value!r} is not an extension: write `2 days`, `36 hours` or a date and time")
    if isinstance(value, (int, float)):
        extension = timedelta(days=value)
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*(d|days?|h|hours?)\s*", value):
        number, unit = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*", value).groups()
        extension = timedelta(days=float(number)) if unit.startswith("d") else timedelta(hours=float(number))
    elif isinstance(value, (datetime, str)) and (not isinstance(value, str) or re.search(r"\d:\d", value)):
        extension = _moment(value, tz_name, where, fail) - base.due
    else:
        fail(f"{where}: {value!r} is not an extension: write `2 days`, `36 hours` or the student's own due "
             f"date and time ({EXAMPLE[len('for example `due: '):-1]})")
    if extension < timedelta(0):
        fail(f"{where}: {value!r} is before the due date: an extension moves the due date later")
    return extension


# ------------------------------------------------------------------------------ a submission
def read_timestamp(folder):
    """The submission time in ``folder``'s ``timestamp.txt`` as an aware UTC datetime, or None
    (no file, or one nbgrader cannot read: the intake flags it ``bad-timestamp``)."""
    path = Path(folder) / "timestamp.txt" if folder else None
    if path is None or not path.is_file():
        return None
    from nbgrader.utils import parse_utc

    try:
        moment = parse_utc(path.read_bytes()[:200].decode("utf-8", errors="replace").strip())
    except Exception:                      # noqa: BLE001  (dateutil raises several kinds)
        return None
    return moment.replace(tzinfo=timezone.utc) if moment else None


def lateness(deadline, timestamp, penalty=0.0):
    """The ledger's ``Record.lateness`` of one submission (see records.Record)."""
    utc = (lambda m: m.astimezone(timezone.utc).isoformat() if m else None)
    if deadline is None:
        return {"timestamp": utc(timestamp), "due": None, "extension": 0.0, "penalty": penalty,
                "seconds_late": 0.0, "days_late": 0, "percent": 0.0, "cutoff": None, "past": "",
                "policy": "no due date", "timezone": "UTC"}
    seconds = max(0.0, (timestamp - deadline.effective_due).total_seconds()) if timestamp else 0.0
    return {"timestamp": utc(timestamp), "due": utc(deadline.due), "extension": deadline.extension.total_seconds(),
            "penalty": penalty, "seconds_late": seconds, "days_late": deadline.days_late(seconds),
            "percent": 100 * deadline.fraction(seconds), "cutoff": utc(deadline.cutoff),
            "past": deadline.past_limit(seconds), "policy": deadline.policy.text(), "timezone": deadline.timezone}


def explain(late):
    """Why a submission lost points (or did not), for the student's feedback; '' if nothing to say."""
    if not late or not late.get("due"):
        return ""
    zone = _zone(late.get("timezone") or "UTC")
    late = dict(late, **{k: f"{datetime.fromisoformat(late[k]).astimezone(zone):%A %d %B %Y, %H:%M} "
                            f"({late.get('timezone') or 'UTC'})"
                         for k in ("due", "timestamp", "cutoff") if late.get(k)})
    ext = late.get("extension") or 0.0
    extended = f" (with your extension of {_duration(ext)})" if ext else ""
    if not late.get("timestamp"):
        return (f"The due date was {late['due']}{extended}. No submission time was recorded "
                "(no timestamp.txt), so the submission is graded as on time.")
    if not late.get("seconds_late"):
        return f"Submitted {late['timestamp']}, on time: the due date was {late['due']}{extended}."
    lines = f"Submitted {late['timestamp']}, {_duration(late['seconds_late'])} after the due date {late['due']}{extended}"
    if late.get("past") == "cutoff":
        why = f"after the hard cutoff ({late['cutoff']}{extended and ', moved by your extension'}), so it gets 0 points"
    elif late.get("past") == "max-days":
        why = f"later than the policy allows ({late['policy']}), so it gets 0 points"
    else:
        why = (f"{late['days_late']} started day{'s' if late['days_late'] != 1 else ''} late; policy: "
               f"{late['policy']}: {late['percent']:g} % of the score")
    return f"{lines}: {why}. Late penalty: {late.get('penalty', 0):g} points."


def _duration(seconds):
    days, rest = divmod(int(round(seconds)), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    parts += [f"{hours} hour{'s' if hours != 1 else ''}"] if hours else []
    parts += [f"{minutes} minute{'s' if minutes != 1 else ''}"] if minutes and not days else []
    return " ".join(parts) or f"{int(round(seconds))} seconds"


def write_to_gradebook(gb, course_deadlines, assignment, student, timestamp):
    """Before autograde: the assignment's due date, the submission's time and extension into
    nbgrader's gradebook ``gb`` (nbgrader computes lateness from them), and every late penalty
    of the submission reset (nbgrader keeps an old one where it does not grade again, and keeps
    an old timestamp when the new submission has none). Without a deadlines file the due date
    and extension set in nbgrader's own tools stay (and no penalty is taken off)."""
    naive = (lambda m: m.astimezone(timezone.utc).replace(tzinfo=None) if m else None)
    deadline = course_deadlines.for_unit(assignment, student)
    if course_deadlines.present:
        gb.update_or_create_assignment(assignment, duedate=naive(deadline.due) if deadline else None)
    gb.update_or_create_student(student)
    submission = gb.update_or_create_submission(assignment, student)
    submission.timestamp = naive(timestamp)
    if course_deadlines.present:
        submission.extension = deadline.extension if deadline and deadline.extension else None
    for notebook in submission.notebooks:
        notebook.late_submission_penalty = None
    gb.db.commit()
