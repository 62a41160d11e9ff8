"""Alerts to chat webhooks: a spider stalled, too many parse failures, a crawl finished.

``Alerter.check(redis, name)`` looks at one spider and sends at most one
message per kind; `run` calls it from its supervising loop for its own spider,
`web` from a background greenlet for every spider.  The same alert (spider +
kind) goes out at most once an hour across all processes: the time of the last
one is kept in Redis (data.alert_once), judged by the alerter's own clock.

- stalled: seeds are waiting (work, due backlog or in flight), workers live, and
  no page was done for `stall_after` seconds.
- failure_rate: over the last 5 minutes, parse failures / (pages done + parse
  failures) passed `failure_rate`, with at least MIN_OUTCOMES outcomes.  The
  alerter samples the cumulative counters itself, so the window starts when it
  does.
- finished: the spider was seen unfinished and is now finished.
"""
import collections
import logging
import time

from ..errors import ConfigError
from . import data

log = logging.getLogger("microspider")
FORMATS = ("json", "slack", "dingtalk", "wecom", "feishu")
KINDS = ("stalled", "failure_rate", "finished")
WINDOW = 300.0          # seconds of the failure share
MIN_OUTCOMES = 20       # fewer outcomes in the window say nothing about a share
CHECK_EVERY = 5.0       # seconds between looks at one spider
QUIET = 3600.0          # the same alert at most once per this many seconds
POST_TIMEOUT = 10.0


def payload(fmt, alert):
    """The JSON body a webhook of format `fmt` expects for `alert` (a dict: spider, kind, text, time)."""
    text = alert["text"]
    if fmt == "slack":
        return {"text": text}
    if fmt in ("dingtalk", "wecom"):
        return {"msgtype": "text", "text": {"content": text}}
    if fmt == "feishu":
        return {"msg_type": "text", "content": {"text": text}}
    return dict(alert)


def post_json(url, body, timeout=POST_TIMEOUT):
    """POST `body` as JSON; the HTTP status (an error is logged and returns None)."""
    import requests

    try:
        status = requests.post(url, json=body, timeout=timeout).status_code
    except requests.RequestException as exc:
        log.warning("alert to %s failed: %s", url, exc)
        return None
    if status >= 300:
        log.warning("alert to %s answered HTTP %d", url, status)
    return status


def _spawn_greenlet(func, *args):
    import gevent

    return gevent.spawn(func, *args)


class Alerter:
    """Decides which alerts are due and sends them to every webhook.

    `now` (a clock), `post` (url, body) and `spawn` (func, *args -> a joinable
    or None) are injectable, so tests drive time and delivery.
    """

    def __init__(self, webhooks, fmt="json", stall_after=600.0, failure_rate=0.5,
                 now=time.time, post=post_json, spawn=_spawn_greenlet):
        self.webhooks, self.fmt = list(webhooks), fmt
        self.stall_after, self.failure_rate = stall_after, failure_rate
        self.now, self.post, self.spawn = now, post, spawn
        self.samples = collections.defaultdict(collections.deque)   # spider -> (t, ok, parse_failures)
        self.unfinished = set()       # spiders seen unfinished
        self.looked = {}              # spider -> when last looked at
        self.pending = []

    def check(self, redis, name, finished=None):
        """Look at one spider and send what is due; returns the alerts sent.

        At most every CHECK_EVERY seconds, except when `finished` (the caller, a
        run, already knows whether the crawl is finished) says the crawl just ended.
        """
        now = self.now()
        if finished is not None and name not in self.looked:
            self.unfinished.add(name)   # a run was started to do this crawl: its end is news
        ending = finished and name in self.unfinished
        if not ending and now - self.looked.get(name, -1e18) < CHECK_EVERY:
            return []
        self.looked[name] = now
        figures = self._figures(redis, name, now)
        if finished is not None:
            figures["finished"] = finished
        sent = [a for a in self._due(name, figures, now) if data.alert_once(redis, name, a["kind"], now, QUIET)]
        for alert in sent:
            self._send(alert)
        if figures["finished"]:
            self.wait()   # a run ends right after this: let the message go out first
        return sent

    def _figures(self, redis, name, now):
        counts = data.counters(redis, name)
        workers, stat = self._queue_figures(redis, name, now)
        return dict(stat, workers=workers, ok=counts.get("ok", 0),
                    parse_failures=counts.get("parse_failures", 0),
                    last_page=data.last_page_at(redis, name),
                    started=data.run_settings(redis, name).get("started"),
                    finished=data.state(redis, name, workers, now)[0] == "finished")

    @staticmethod
    def _queue_figures(redis, name, now):
        found = data.queue_counts(redis, name, now)
        return found["workers"], {k: found[k] for k in ("work", "backlog_due", "in_flight")}

    def _due(self, name, f, now):
        out = []
        waiting = f["work"] + f["backlog_due"] + f["in_flight"]
        quiet_since = max(t for t in (f["last_page"], f["started"], 0) if t is not None)
        if waiting and f["workers"] and now - quiet_since >= self.stall_after:
            out.append(self._alert(name, "stalled", now, (
                "%d seeds waiting (work %d, due backlog %d, in flight %d), %d live workers, "
                "no page done for %s" % (waiting, f["work"], f["backlog_due"], f["in_flight"],
                                         f["workers"], _duration(now - quiet_since)))))
        share = self._failure_share(name, f, now)
        if share is not None and share[0] > self.failure_rate:
            out.append(self._alert(name, "failure_rate", now, (
                "%.0f%% of parsed pages failed over the last %s (%d of %d; threshold %.0f%%)"
                % (share[0] * 100, _duration(share[3]), share[1], share[2], self.failure_rate * 100))))
        if f["finished"] and name in self.unfinished:
            out.append(self._alert(name, "finished", now, "crawl finished: %d pages done, %d parse "
                                   "failures counted" % (f["ok"], f["parse_failures"])))
        if f["finished"]:
            self.unfinished.discard(name)
        else:
            self.unfinished.add(name)
        return out

    def _failure_share(self, name, f, now):
        """(share, failures, outcomes, seconds) over the last WINDOW, or None (too few outcomes)."""
        samples = self.samples[name]
        samples.append((now, f["ok"], f["parse_failures"]))
        while len(samples) > 1 and samples[1][0] <= now - WINDOW:
            samples.popleft()   # keep one sample at or before the window's start
        then, ok, failed = samples[0]
        failed = f["parse_failures"] - failed
        outcomes = f["ok"] - ok + failed
        if outcomes < MIN_OUTCOMES or failed < 0:
            return None
        return failed / float(outcomes), failed, outcomes, now - then

    @staticmethod
    def _alert(name, kind, now, what):
        return {"spider": name, "kind": kind, "time": now,
                "text": "microspider: %s %s: %s" % (name, kind.replace("_", " "), what)}

    def _send(self, alert):
        log.warning("alert: %s", alert["text"])
        body = payload(self.fmt, alert)
        self.pending = [job for job in self.pending if not job.ready()]
        for url in self.webhooks:
            job = self.spawn(self.post, url, body)
            if job is not None:
                self.pending.append(job)

    def wait(self, timeout=POST_TIMEOUT + 2):
        """Wait until the messages sent so far have gone out (or `timeout`)."""
        deadline = time.monotonic() + timeout
        for job in self.pending:
            job.join(max(0.0, deadline - time.monotonic()))
        self.pending = [job for job in self.pending if not job.ready()]


def _duration(seconds):
    seconds = int(seconds)
    if seconds < 120:
        return "%d s" % seconds
    if seconds < 7200:
        return "%d min" % (seconds // 60)
    return "%.1f h" % (seconds / 3600.0)


def from_options(webhooks, fmt=None, stall_after=None, failure_rate=None, **extra):
    """An Alerter for the command-line options, or None without a webhook; ConfigError if bad."""
    fmt = fmt or "json"
    if fmt not in FORMATS:
        raise ConfigError("--alert-format must be one of %s" % ", ".join(FORMATS))
    stall_after = 600.0 if stall_after is None else stall_after
    failure_rate = 0.5 if failure_rate is None else failure_rate
    if stall_after <= 0:
        raise ConfigError("--stall-after must be a number of seconds > 0")
    if not 0 <= failure_rate <= 1:
        raise ConfigError("--alert-failure-rate must be a share from 0 to 1")
    for url in webhooks or ():
        if not url.startswith(("http://", "https://")):
            raise ConfigError("--alert-webhook %r: give an http:// or https:// URL" % url)
    if not webhooks:
        return None
    return Alerter(webhooks, fmt, stall_after, failure_rate, **extra)
