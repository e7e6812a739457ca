"""The course's late policy as nbgrader's late-submission plugin.

nbgrader's ``AssignLatePenalties`` (in the worker's autograde pipeline) asks its plugin, for
every notebook of a late submission, how many points to take off; ``DeadlinePenalty`` answers
with the policy of ``course/deadlines.yml`` (``deadlines.Deadline.penalty``) for the
assignment being graded. nbgrader gives the plugin the student, the notebook's score and how
many seconds the submission was late after its due date and extension (both written into the
gradebook by ``deadlines.write_to_gradebook`` just before); the assignment is the one its
preprocessor (the plugin's parent) is processing.

    c.AssignLatePenalties.plugin_class = DeadlinePenalty
    c.DeadlinePenalty.course = records.Course(...)
"""
from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Any


class DeadlinePenalty(LateSubmissionPlugin):
    """Points off = the notebook's score x the policy's share for that lateness."""
    course = Any(None, help="the records.Course whose deadlines.yml holds the policy").tag(config=True)

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        deadline = self.course.deadlines.for_unit(self.parent.assignment_id, student_id)
        if deadline is None or not total_seconds_late:
            return None
        penalty = deadline.penalty(score or 0.0, total_seconds_late)
        self.log.info("late by %.0f s: penalty %s of %s (%s)", total_seconds_late, penalty, score,
                      deadline.policy.text())
        return penalty
