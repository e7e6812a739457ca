"""The instructor's side of the course (never copied to students)."""
