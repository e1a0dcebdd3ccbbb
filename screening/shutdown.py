"""The local cluster's last steps, run while the summary is written.

Once every task has answered, nothing the outputs need is left in the cluster: closing the client and
the cluster (workers told to exit, their processes waited for) took 35-80 ms at 100,000 patients here,
mostly waiting on other processes, which the client spent before the summary; stopping the forkserver
(40-70 ms) overlapped the summary already. Run in this thread, both overlap with the summary's drawing; `screen()` joins it before it returns, so no process
outlives the command and a failure to close is still raised.
"""

from __future__ import annotations

import threading
from typing import Callable


class Shutdown(threading.Thread):
    """Runs `steps` in order, each even if an earlier one failed (a forkserver is stopped even when the
    cluster did not close cleanly); `join()` raises the first failure, once, in the joining thread."""

    def __init__(self, steps: list[Callable[[], object]]) -> None:
        super().__init__(name="shut down the cluster")
        self.steps = steps
        self.error: BaseException | None = None

    def run(self) -> None:
        for step in self.steps:
            try:
                step()
            except BaseException as error:  # noqa: BLE001 - kept for join(), which raises it
                self.error = self.error or error

    def join(self, timeout: float | None = None) -> None:
        super().join(timeout)
        error, self.error = self.error, None
        if error is not None:
            raise error
