"""The process the local cluster's workers are forked from (multiprocessing's forkserver), with
screening/preload.py imported in it: imports done, knowledge base and engine built, once for all workers.

A module of its own that imports nothing heavy, so that `myotomy-cds screen` starts the forkserver
before it imports the rest (rules/cli.py): the forkserver's preload (about 0.8 s, the longest part of a
screen's start) then runs on one core while this process imports dask, pyarrow and the project on the
other, instead of after them.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
from multiprocessing import forkserver

PRELOAD = "screening.preload"


def start() -> bool:
    """Start the forkserver with screening/preload.py imported in it, unless it runs already (a second call
    is a no-op). Spawn and forkserver both start from a fresh interpreter (never a fork of this
    multi-threaded client). The preload list is read when the server starts, so distributed's own list,
    which it sets later, does not replace ours. False where there is no forkserver (Windows): workers are
    spawned, as before."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    forkserver.set_forkserver_preload([PRELOAD])
    forkserver.ensure_running()
    return True


def start_early(scheduler: str | None) -> None:
    """For the command line: start the forkserver first thing when the screen will run on a local cluster
    (no --scheduler, dask.distributed installed); `screen()` then finds it running."""
    if not scheduler and importlib.util.find_spec("distributed") is not None:
        start()


def keep_our_preload() -> None:
    """Tell dask.distributed that the forkserver's preload is set (it is: ours, started by `start()`).

    Otherwise its first local worker makes its own list, importing numpy, pandas and lz4 in this process
    to see which are installed, on the cluster's event loop: about 0.25 s of CPU, which here held the
    second worker's start until after the forkserver was ready (0.26 s after it, on a 100,000-patient
    screen), and a list the running forkserver ignores anyway. A private flag of distributed.utils
    (2026.x); where it is gone, this does nothing and the list is made as before."""
    import distributed.utils

    if hasattr(distributed.utils, "_forkserver_preload_set"):
        distributed.utils._forkserver_preload_set = True


def stop() -> None:
    """Once the local cluster is closed, stop the forkserver and wait for it, as for any child process:
    none is left behind, and its CPU time (with that of the workers it forked and waited for) counts
    among this process's children's, where `make bench-screen` reads it. multiprocessing has no public
    call for this; `_stop` is the one its own tests use, and a later screen starts a new server."""
    stop_server = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)
    if stop_server is not None:
        stop_server()
