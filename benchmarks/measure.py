"""Measuring a contender from outside: CPU of its process tree, peak RSS per process, Redis.

- CPU: ``resource.getrusage(RUSAGE_CHILDREN)`` user+sys before and after the
  harness waits for the contender's process.  Exact, and it includes the
  contender's own children (worker processes) because the contender waited for
  them before it exited.  The harness runs one contender at a time and waits for
  nothing else in between.
- CPU within the crawl span (first to last page request, by the server's clock):
  the polled tree CPU, interpolated at both ends; it leaves out start-up
  (imports) and shutdown.
- Per-process CPU and peak RSS: a thread polls ``/proc`` every ``interval``
  seconds for the contender's descendants and reads ``utime+stime`` from
  ``/proc/PID/stat`` and ``VmHWM`` (the kernel's peak resident set) from
  ``/proc/PID/status``.  VmHWM only grows, so the last poll before a process
  exits is its peak within one interval of its end.
- Redis: ``INFO`` before and after: ``used_cpu_user + used_cpu_sys`` (CPU of
  the redis-server process) and ``total_reads_processed`` (Redis >= 6: read
  events on client sockets, about one per round trip; a pipeline that exceeds
  Redis's 16 KB read buffer counts more than once, so this errs high).
"""
import os
import resource
import threading
import time

CLOCK = os.sysconf("SC_CLK_TCK")


def children_cpu():
    """User+sys seconds of every child process the harness has waited for."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _stat(pid):
    """(ppid, cpu seconds) of a process, or None if it is gone."""
    data = _read("/proc/%d/stat" % pid)
    if not data:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK


def _hwm_kb(pid):
    data = _read("/proc/%d/status" % pid)
    if not data:
        return None
    for line in data.splitlines():
        if line.startswith(b"VmHWM:"):
            return int(line.split()[1])
    return None


def _cmdline(pid):
    data = _read("/proc/%d/cmdline" % pid) or b""
    return data.replace(b"\0", b" ").decode(errors="replace").strip()


class TreeWatch:
    """Polls the process tree under `root` until stopped; per pid: cmdline, CPU, peak RSS."""

    def __init__(self, root, interval=0.1):
        self.root = root
        self.interval = interval
        self.procs = {}          # pid -> {"cmd", "cpu_s", "hwm_kb"}
        self.samples = []        # (epoch seconds, CPU seconds of the tree so far)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.interval)

    def poll(self):
        parents = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                st = _stat(int(name))
                if st:
                    parents[int(name)] = st
        tree, frontier = {self.root}, [self.root]
        while frontier:
            pid = frontier.pop()
            for child, (ppid, _) in parents.items():
                if ppid == pid and child not in tree:
                    tree.add(child)
                    frontier.append(child)
        for pid in tree:
            if pid not in parents:
                continue
            rec = self.procs.get(pid)
            if rec is None:
                rec = self.procs[pid] = {"cmd": _cmdline(pid), "cpu_s": 0.0, "hwm_kb": 0}
            rec["cpu_s"] = parents[pid][1]
            hwm = _hwm_kb(pid)
            if hwm:
                rec["hwm_kb"] = max(rec["hwm_kb"], hwm)
        self.samples.append((time.time(), sum(r["cpu_s"] for r in self.procs.values())))

    def cpu_between(self, start, end):
        """CPU seconds the tree used between two epoch times (interpolated between polls)."""
        return self._cpu_at(end) - self._cpu_at(start)

    def _cpu_at(self, t):
        samples = self.samples
        if not samples:
            return 0.0
        if t <= samples[0][0]:
            return samples[0][1]
        for (t0, c0), (t1, c1) in zip(samples, samples[1:]):
            if t0 <= t <= t1:
                return c0 + (c1 - c0) * (t - t0) / (t1 - t0) if t1 > t0 else c1
        return samples[-1][1]

    def matching(self, word):
        """Records of the processes whose command line contains `word`."""
        return [r for r in self.procs.values() if word in r["cmd"]]


def redis_info(client):
    """The INFO figures the benchmark reads, as floats."""
    info = client.info("all")
    return {"cpu_s": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
            "reads": int(info.get("total_reads_processed", 0)),
            "commands": int(info["total_commands_processed"]),
            "used_memory": int(info["used_memory"])}


def redis_delta(before, after):
    """What happened in Redis between two redis_info() snapshots, less the snapshot itself."""
    return {"cpu_s": after["cpu_s"] - before["cpu_s"],
            "reads": after["reads"] - before["reads"] - 1,        # the INFO that read `after`
            "commands": after["commands"] - before["commands"] - 1}


class Stopwatch:
    def __enter__(self):
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.seconds = time.monotonic() - self.start
