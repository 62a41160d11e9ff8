"""Writes to other slots of a Redis Cluster, confirmed by a replica before anything depends on them.

A spider's batch also writes outside its own slot: seeds sent to other spiders'
work queues, their upstream sets, the spider registry.  On a cluster these
cannot share the spider's own transaction, so they go first and the
acknowledgement (in the spider's own transaction) comes last: a crash in between
repeats work, never loses it.

They must also survive a failover of the master they went to: a master
acknowledges a write before its replica has it, and if it dies then, the
promoted replica never saw the write.  So the writes are grouped by the master
that holds each key, and each group is one pipeline on one connection that
ends with ``WAIT 1 timeout`` when that master has a replica online.  WAIT counts
only the writes made on its own connection; that is why each group runs on a
plain client of its master (the cluster client's pipeline may resend a failed
command on another connection).  A group whose WAIT saw no replica raises
``NotReplicated`` (a ``redis.TimeoutError``, so callers back off and retry as in
an outage); the whole batch is then written again: duplicates, never loss.

The spider's own writes need no WAIT: they share one transaction with the
acknowledgement, and a replica applies a master's stream in order, so a
promoted replica has either both or neither.

Behind Sentinel every key is on one master, so a batch is one transaction, but
what a batch acknowledges must still survive a failover: a run that saw its
queue empty and ended cannot take back a seed the promoted replica never got.
``transaction()`` gives such a master's transactions a ``WAIT`` on their own
connection after ``EXEC``; the replication stream is one ordered log, so that
WAIT also covers every write the master took before it, from any connection and
in any db (a take, a relay's move, the cache in another db).
"""
import redis
from redis.client import Pipeline
from redis.exceptions import AskError, ClusterDownError, TryAgainError

from .connection import UNAVAILABLE, WAIT_TIMEOUT_MS


class NotReplicated(redis.TimeoutError):
    """No replica confirmed a group of writes within WAIT_TIMEOUT_MS."""


class ConfirmedWrites:
    """Queue ``rpush``/``sadd``/``srem``/``eval`` like on a pipeline; ``execute()`` sends them."""

    def __init__(self, redis_roles):
        self.redis = redis_roles
        self.groups = {}          # master name -> (its plain client, [(command, key, args)])

    def rpush(self, key, *values):
        self._add("rpush", key, values)

    def sadd(self, key, *members):
        self._add("sadd", key, members)

    def srem(self, key, *members):
        self._add("srem", key, members)

    def eval(self, script, numkeys, *keys_and_args):
        """A script whose keys share one slot, sent to the master of its first key (a push
        to a work queue: ``queue.push``).  EVAL, not EVALSHA: a pipeline cannot load a
        script it finds missing, and WAIT covers a script's writes like any others."""
        self._add("eval", keys_and_args[0], (script, numkeys) + keys_and_args)

    def _add(self, command, key, args):
        name, client = self.redis.master_of(key)
        self.groups.setdefault(name, (client, []))[1].append((command, key, args))

    def __bool__(self):
        return bool(self.groups)

    def execute(self):
        """Send each master's group in one round trip; raise if a group failed or was not confirmed.

        Returns the commands' results, group by group (masters by name)."""
        results = []
        for name in sorted(self.groups):
            client, commands = self.groups[name]
            results += self._send(name, client, commands)
        self.groups = {}
        return results

    def _send(self, name, client, commands):
        roles = self.redis
        try:
            wait = roles.wait_replica and roles.has_replica(name, client)
            pipe = client.pipeline(transaction=False)
            for command, key, args in commands:
                if command == "eval":
                    pipe.eval(*args)          # its key is among its args
                else:
                    getattr(pipe, command)(key, *args)
            if wait:
                pipe.execute_command("WAIT", 1, WAIT_TIMEOUT_MS)
            results = pipe.execute(raise_on_error=False)
        except UNAVAILABLE:
            self._refresh()
            raise
        for result in results:
            if isinstance(result, (AskError, ClusterDownError, TryAgainError)):
                self._refresh()      # the slot moved (failover, resharding): re-read the map
                raise result
            if isinstance(result, Exception):
                raise result
        if wait and results[-1] < 1:
            roles.forget_replicas(name)
            raise NotReplicated("no replica of %s confirmed the writes within %d ms"
                                % (name, WAIT_TIMEOUT_MS))
        return results[:len(commands)]

    def _refresh(self):
        try:
            self.redis.refresh()
        except UNAVAILABLE:
            pass                     # the caller's back-off retries; the map is re-read then


def transaction(roles, client):
    """A MULTI/EXEC pipeline on `client`; behind Sentinel (unless --no-wait-replica) its EXEC
    is confirmed by a replica before ``execute()`` returns."""
    if roles.sentinel and roles.wait_replica:
        return ReplicatedTransaction(roles, client)
    return client.pipeline(transaction=True)


class ReplicatedTransaction(Pipeline):
    """A transaction that, on a master with a replica online, sends ``WAIT 1`` on its connection.

    ``execute()`` raises NotReplicated when the WAIT saw no replica: the caller
    backs off and writes the batch again (duplicates, never loss)."""

    def __init__(self, roles, client):
        super().__init__(client.connection_pool, client.response_callbacks, True, None)
        self.roles, self.client, self.unconfirmed = roles, client, None

    def _execute_transaction(self, connection, commands, raise_on_error):
        results = super()._execute_transaction(connection, commands, raise_on_error)
        master = "%s:%s" % (connection.host, connection.port)
        self.unconfirmed = None
        if self.roles.has_replica(master, self.client):
            connection.send_command("WAIT", 1, WAIT_TIMEOUT_MS)
            if self.parse_response(connection, "WAIT") < 1:
                self.unconfirmed = master    # raised by execute(), outside redis-py's retries
        return results

    def execute(self, raise_on_error=True):
        results = super().execute(raise_on_error)
        if self.unconfirmed:
            self.roles.forget_replicas(self.unconfirmed)
            raise NotReplicated("no replica of %s confirmed the writes within %d ms"
                                % (self.unconfirmed, WAIT_TIMEOUT_MS))
        return results
