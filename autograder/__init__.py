"""What students and instructors get besides the notebooks.

``autograder.checks``   the checks the notebooks' test cells call; no reference solution inside
``autograder.datasets`` MNIST (embedded 5k subset or full 70k from IDX files), 8×8 digits, the
                        noisy cosine

Nothing in this package imports ``solutions_lib``.
"""
