"""CPU seconds of processes, from /proc/PID/stat (proc(5)), for the benchmarks and load tests."""

import collections
import os

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid):
    """(ppid, own user+sys, reaped children's user+sys) in seconds, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # after "pid (comm)": state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based in proc(5)
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK, (int(fields[13]) + int(fields[14])) / TICK


def cpu_seconds(pid):
    """User+sys seconds of process ``pid`` itself so far; None if there is no such process."""
    found = _stat(pid) if pid else None
    return found[1] if found else None


def tree_cpu(root):
    """User+sys seconds of ``root`` and every descendant, alive or reaped (cutime, cstime)."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            found = _stat(int(name))
            if found:
                table[int(name)] = found
    children = collections.defaultdict(list)
    for pid, (ppid, _, _) in table.items():
        children[ppid].append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            _, own, reaped = table[pid]
            total += own + reaped
            todo.extend(children[pid])
    return total
