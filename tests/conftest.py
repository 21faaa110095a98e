"""Test-session settings."""

import os

import torch as th

# One intra-op thread, here and in the subprocesses tests start (CLI, rl-zoo3, Optuna workers):
# the suite's networks are tiny, and on a 2-core machine shared with other processes torch's
# OpenMP pool oversubscribes the cores and can slow a test tenfold.
os.environ.setdefault("OMP_NUM_THREADS", "1")
th.set_num_threads(1)
