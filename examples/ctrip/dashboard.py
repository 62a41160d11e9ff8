"""The demo's ``--web [PORT]``: ``microspider web`` in the work folder while the crawl runs."""
import os
import subprocess
import sys
import time

PREFIX = "microspider: "


def start_web(port, folder, env, wait=30.0):
    """Start the dashboard on 127.0.0.1:PORT for the folder's crawl; returns (process, lines said).

    Its output goes to logs/web.log; the lines naming its address and token are
    returned once it has printed them (or it has exited).
    """
    path = os.path.join(folder, "logs", "web.log")
    with open(path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "microspider", "web", "--port", str(port)],
                                cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and proc.poll() is None:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [line.strip()[len(PREFIX):] for line in f if line.startswith(PREFIX)]
        said = [line for line in lines if line.startswith(("dashboard at", "token for actions"))]
        if len(said) == 2:
            return proc, said
        time.sleep(0.1)
    with open(path, encoding="utf-8", errors="replace") as f:
        return proc, ["the dashboard did not start: " + (f.read().strip().splitlines() or ["?"])[-1]]
