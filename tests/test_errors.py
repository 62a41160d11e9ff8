"""One exception tree: every error microspider raises on purpose is a MicrospiderError."""
import pytest

import microspider
from microspider import LockTimeout, MicrospiderError, SendOutsideParse, Spider
from microspider.state.keys import seeding
from microspider.state.locks import Lock


class Shop(Spider):
    name = "shop"

    def parse(self, response, seed):
        yield {}


def test_every_public_error_is_a_microspider_error():
    public = [getattr(microspider, name) for name in microspider.__all__]
    errors = [obj for obj in public if isinstance(obj, type) and issubclass(obj, BaseException)]
    assert LockTimeout in errors and SendOutsideParse in errors
    assert all(issubclass(e, MicrospiderError) for e in errors), errors


def test_send_outside_parse_says_what_to_do_and_stays_a_runtime_error():
    with pytest.raises(SendOutsideParse, match="yield the Seed") as caught:
        Shop().send("http://a.com/")
    assert isinstance(caught.value, RuntimeError)   # what 0.2 raised: old handlers still catch it


def test_a_lock_held_elsewhere_times_out_as_both_error_kinds(r):
    holder = Lock(r, seeding("shop"), ttl=30, wait=0)
    assert holder.acquire()
    try:
        for kind in (LockTimeout, MicrospiderError, TimeoutError):
            with pytest.raises(kind, match="held elsewhere"):
                with Lock(r, seeding("shop"), wait=0):
                    pass
        assert r.get(seeding("shop")) == holder.token.encode()   # the loser released nothing
    finally:
        holder.release()
    assert not r.exists(seeding("shop"))


def test_lock_timeout_still_imports_from_state_locks():
    from microspider.errors import LockTimeout as from_errors
    from microspider.state.locks import LockTimeout as from_locks

    assert from_errors is from_locks
