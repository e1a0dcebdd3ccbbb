"""Imported once, by the process that forks the local cluster's workers (multiprocessing's forkserver,
screening/forkserver.py), so that each worker starts with the imports done and the
knowledge base, rules engine and terminology built, instead of importing and building them itself
(about 1.5 CPU seconds per worker on this machine: dask, distributed, pyarrow, the knowledge
base). Workers on a cluster reached with --scheduler do the same work in `screening.run.warm` when
the screen starts.

Importing this module builds them: that is its only purpose; nothing else imports it.
"""

import sys
from typing import Any

import distributed  # noqa: F401 - what every worker process runs
import pyarrow as pa

import screening.patients  # noqa: F401 - what every task runs
from screening.run import warm


class _NoPandas:
    """An import finder that refuses pandas, for as long as it is on sys.meta_path."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas":
            raise ImportError("pandas is not imported by the screen's local workers")


def arrow_without_pandas() -> None:
    """Let pyarrow find no pandas the first time it looks, so that the local workers do not import it.

    pyarrow imports pandas the first time it builds an array (to recognise pandas values, which the
    screen never gives it): about 0.4 s of the forkserver's preload, the critical path of a local
    screen's start. pyarrow looks once; a later `to_pandas()` still imports pandas when asked. Only in
    this process, whose workers run nothing but the screen: not in the workers of a cluster reached with
    --scheduler, which may run other work that hands pyarrow pandas values."""
    if "pandas" in sys.modules:
        return
    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        pa.array([], pa.string())
    finally:
        sys.meta_path.remove(finder)


arrow_without_pandas()
try:
    warm()
except Exception:  # noqa: BLE001 - a knowledge base that does not load fails in each worker's warm(), with its message
    pass
