"""Peak memory of a benchmark's child process and of the processes it spawns (Linux).

``peak_rss_mib()`` is the process's own high-water mark (``VmHWM``); :class:`TreePeak`
samples the whole process tree, for paths whose work runs in worker processes.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def proc_kib(pid: int | str, key: str, file: str = "status") -> int:
    """A ``kB`` field of ``/proc/<pid>/<file>``; 0 once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass  # the process ended meanwhile
    return 0


def peak_rss_mib() -> float:
    """This process's peak resident set (``VmHWM``) in MiB."""
    return round(proc_kib("self", "VmHWM") / 1024, 1)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, …)."""
    found, stack = [], [pid]
    while stack:
        for task in Path(f"/proc/{stack.pop()}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            stack += children
    return found


class TreePeak(threading.Thread):
    """Samples the memory of this process and its descendants every 100 ms, while it has
    any (alone, its own ``VmHWM`` is its peak).

    Counted as the anonymous PSS of every process, summed, plus the largest file-backed RSS
    of any one of them. Summed RSS would count twice what forked workers still share with
    their parent, and summed PSS would divide the libraries' pages with unrelated processes
    of the machine; the workers map the same libraries, so those count once.
    """

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kib = 0
        self._done = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self._done.wait(0.1):
            children = descendants(me)
            if not children:
                # Alone, the process's own VmHWM (taken at stop) is its exact peak; and
                # reading smaps_rollup walks the page tables under the memory-map lock,
                # which stalls the measured process: 10-20 % of a numpy-heavy path's time.
                continue
            tree = [me, *children]
            total = sum(proc_kib(p, "Pss_Anon", "smaps_rollup") for p in tree) + max(
                proc_kib(p, "RssFile") for p in tree)
            self.peak_kib = max(self.peak_kib, total)

    def stop(self) -> float:
        """Stop sampling; the peak in MiB (at least this process's own VmHWM)."""
        self._done.set()
        self.join()
        return round(max(self.peak_kib, proc_kib("self", "VmHWM")) / 1024, 1)


def memory(sampler: TreePeak) -> dict[str, float]:
    """``peak_rss_mib`` of this process and ``tree_peak_mib`` (stops ``sampler``)."""
    return {"peak_rss_mib": peak_rss_mib(), "tree_peak_mib": sampler.stop()}
