"""Many threads through the public API at once: no crash, and every result equals the one computed alone.

durable-rules is not thread-safe (design.md: eight threads with failing actions crashed the process
three runs out of three); the engine's process-wide lock is what these tests prove. The failing-action
test runs in a subprocess, so a crash fails the test instead of killing the test run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from models.loader import load_cases
from rules import assess

ROOT = Path(__file__).resolve().parent.parent
THREADS = 16
ROUNDS = 200


def test_sixteen_threads_get_the_results_computed_alone() -> None:
    cases = [case.input for _, case in load_cases()]
    alone = [assess(raw) for raw in cases]
    mismatches: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def worker(offset: int) -> None:
        try:
            start.wait()
            for i in range(ROUNDS):
                index = (offset * 7 + i) % len(cases)
                if assess(cases[index]) != alone[index]:
                    mismatches.append(f"thread {offset} round {i} case {index}")
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors[:3]
    assert not mismatches, mismatches[:5]


FAILING_ACTIONS = textwrap.dedent(
    """
    import threading
    from rules import RuleExecutionError, assess
    from models.loader import load
    from rules.engine import Engine

    kb = load()

    def explode(rule_id):
        raise RuntimeError("injected fault in " + rule_id)

    context = (kb, Engine(kb, action_hook=explode))
    case = {"age": {"value": 45}, "conditions": [{"presentation": "achalasia"}]}
    raised, other = [], []

    def worker():
        for _ in range(200):
            try:
                assess(case, context=context)
                other.append("no error")
            except RuleExecutionError:
                raised.append(1)
            except BaseException as error:
                other.append(repr(error))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    print(len(raised), len(other), other[:3])
    """
)


def test_failing_actions_under_threads_raise_cleanly_and_never_crash() -> None:
    done = subprocess.run([sys.executable, "-c", FAILING_ACTIONS], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"process died with {done.returncode}: {done.stderr[-2000:]}"
    raised, other = done.stdout.split()[:2]
    assert (int(raised), int(other)) == (1600, 0), done.stdout
