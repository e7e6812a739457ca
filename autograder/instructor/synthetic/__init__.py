"""A synthetic class for the demo, the tests and the benchmarks: reference answers, catalogued
bugs (``bugs.json``), blank notebooks and adversaries, and what the grader must make of each."""
