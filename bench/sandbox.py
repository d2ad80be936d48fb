#!/usr/bin/env python3
"""What the sandbox adds to starting a model process; prints its figures.

    .venv/bin/python bench/sandbox.py [--runs 20]

Starts a model process (builds/runtime/child.py) plainly and in bubblewrap, alternately, and times
start -> its first reply (a request it answers at once, before any model is loaded). Reports the
median and the worst of each, and the difference. Target (issue 11): under 100 ms per process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from builds.runtime.process import ModelProcess, ModelProcessError  # noqa: E402
from builds.runtime.sandbox import bwrap_path, sandbox_for  # noqa: E402

TARGET_MS = 100


def start_and_ask(workdir: Path, sandbox) -> float:
    started = time.perf_counter()
    process = ModelProcess(env={}, workdir=workdir, sandbox=sandbox).start()
    try:
        process.call({"op": "ping"}, timeout=60)  # an unknown request: answered with an error at once
    except ModelProcessError:
        pass
    seconds = time.perf_counter() - started
    process.close()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    if bwrap_path() is None:
        print("bubblewrap (bwrap) is not installed: nothing to compare")
        return 1
    sandbox = sandbox_for("required")
    times: dict[str, list[float]] = {"plain": [], "sandboxed": []}
    with tempfile.TemporaryDirectory() as work:
        for _ in range(args.runs):  # alternate, so drift on a shared machine hits both alike
            times["plain"].append(start_and_ask(Path(work), None))
            times["sandboxed"].append(start_and_ask(Path(work), sandbox))
    for label, runs in times.items():
        print(
            f"{label:<10} start -> first reply: median {statistics.median(runs) * 1000:6.1f} ms, "
            f"worst {max(runs) * 1000:6.1f} ms over {len(runs)} runs"
        )
    added = statistics.median(times["sandboxed"]) - statistics.median(times["plain"])
    worst = max(times["sandboxed"]) - max(times["plain"])
    verdict = "met" if max(added, worst) * 1000 < TARGET_MS else "NOT MET"
    print(
        f"the sandbox adds {added * 1000:.1f} ms (median), {worst * 1000:.1f} ms (worst) -> < {TARGET_MS} ms: {verdict}"
    )
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    sys.exit(main())
