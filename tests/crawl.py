"""Helpers to run the real `microspider` command against local sites in tests."""
import json
import os
import signal
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli_env(**extra):
    env = dict(os.environ)
    env.pop("MICROSPIDER_REDIS", None)
    env.pop("MICROSPIDER_MONGO_URI", None)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def command(*args):
    return [sys.executable, "-m", "microspider"] + [str(a) for a in args]


def microspider(*args, cwd, timeout=90, env=None, check=None):
    """Run the CLI to the end; returns CompletedProcess (text)."""
    proc = subprocess.run(command(*args), cwd=str(cwd), env=env or cli_env(), timeout=timeout,
                          capture_output=True, text=True)
    if check is not None and proc.returncode != check:
        raise AssertionError("exit %s, expected %s\nstdout: %s\nstderr: %s"
                             % (proc.returncode, check, proc.stdout[-3000:], proc.stderr[-3000:]))
    return proc


def start(*args, cwd, env=None):
    """Start the CLI in the background (its own process group)."""
    return subprocess.Popen(command(*args), cwd=str(cwd), env=env or cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish(proc, timeout=60):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError("did not end within %ss\n%s" % (timeout, err[-3000:]))
    return proc.returncode, out, err


def write_spider(folder, filename, body, **fmt):
    path = os.path.join(str(folder), filename)
    with open(path, "w", encoding="utf-8") as f:
        f.write("from microspider import Spider, Seed\n" + textwrap.dedent(body).format(**fmt))
    return path


def stat(cwd, spider, *conn):
    proc = microspider("stat", "--json", *conn, spider, cwd=cwd, check=0)
    return json.loads(proc.stdout)


def children(pid):
    """PIDs of a process's direct children (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found
