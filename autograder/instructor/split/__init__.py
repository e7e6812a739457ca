"""The split execution: a submission's cells in a student process, its tests in a grader process."""
