"""Helpers for this assignment: the checks its test cells call, data loaders, widgets.

Copied from the course repository's ``autograder`` package by ``nn-course build``; do not edit
(a fresh build replaces it). Nothing here contains a solution.
"""
