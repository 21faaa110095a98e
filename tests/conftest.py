"""Test-session settings."""

import torch as th

# One intra-op thread: the suite's networks are tiny, and on a 2-core machine shared with other
# processes, torch's OpenMP pool oversubscribes the cores and can slow a test tenfold.
th.set_num_threads(1)
