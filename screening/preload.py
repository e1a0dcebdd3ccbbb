"""Imported once, by the process that forks the local cluster's workers (multiprocessing's forkserver,
screening/forkserver.py), so that each worker starts with the imports done and the
knowledge base, rules engine and terminology built, instead of importing and building them itself
(about 1.5 CPU seconds per worker on this machine: dask, distributed, pyarrow, pandas, the knowledge
base). Workers on a cluster reached with --scheduler do the same work in `screening.run.warm` when
the screen starts.

Importing this module builds them: that is its only purpose; nothing else imports it.
"""

import distributed  # noqa: F401 - what every worker process runs

import screening.patients  # noqa: F401 - what every task runs
from screening.run import warm

try:
    warm()
except Exception:  # noqa: BLE001 - a knowledge base that does not load fails in each worker's warm(), with its message
    pass
