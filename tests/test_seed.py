import json

import pytest

from microspider import Seed
from microspider.errors import MalformedSeed


def test_json_round_trip_keeps_every_field_and_unknown_ones():
    seed = Seed("http://a.com/x?b=2", method="post", headers={"X": "1"}, cookies={"c": "v"},
                query={"q": "s"}, data={"k": "v"}, meta={"city": "北京"}, age=3)
    raw = seed.to_json()
    obj = json.loads(raw)
    assert obj["v"] == 1 and obj["method"] == "POST" and obj["age"] == 3
    obj["future_field"] = {"x": 1}
    back = Seed.from_json(json.dumps(obj))
    assert back.extra == {"future_field": {"x": 1}}
    assert json.loads(back.to_json())["future_field"] == {"x": 1}
    for name in ("url", "method", "headers", "cookies", "query", "data", "meta", "age"):
        assert getattr(back, name) == getattr(seed, name)


def test_defaults_are_left_out_of_the_wire():
    assert json.loads(Seed("http://a.com/").to_json()) == {"v": 1, "url": "http://a.com/"}


@pytest.mark.parametrize("url", ["ftp://a.com/", "a.com/x", "", "http://", "javascript:alert(1)",
                                 "http://a.com:99999999/", "http://[::1"])
def test_bad_urls_raise_value_error(url):
    with pytest.raises(ValueError, match="url"):
        Seed(url)


def test_bad_method_and_fields_raise_value_error():
    with pytest.raises(ValueError, match="method"):
        Seed("http://a.com/", method="DELETE")
    with pytest.raises(ValueError, match="meta"):
        Seed("http://a.com/", meta=["x"])
    with pytest.raises(ValueError, match="age"):
        Seed("http://a.com/", age=-1)
    with pytest.raises(ValueError, match="data"):
        Seed("http://a.com/", data=[1])


def test_fingerprint_ignores_meta_age_and_query_order():
    a = Seed("http://A.com:80/p?b=2&a=1", meta={"x": 1}, age=4)
    b = Seed("http://a.com/p?a=1", query={"b": 2})
    c = Seed("http://a.com/p", query={"b": "2", "a": "1"})
    assert a.fingerprint == b.fingerprint == c.fingerprint
    assert a.canonical_url() == "http://a.com/p?a=1&b=2"


def test_fingerprint_changes_with_method_body_and_url():
    base = Seed("http://a.com/p")
    assert base.fingerprint != Seed("http://a.com/p", method="POST").fingerprint
    assert (Seed("http://a.com/p", method="POST", data={"a": 1}).fingerprint
            != Seed("http://a.com/p", method="POST", data={"a": 2}).fingerprint)
    assert (Seed("http://a.com/p", method="POST", data={"a": 1, "b": 2}).fingerprint
            == Seed("http://a.com/p", method="POST", data={"b": 2, "a": 1}).fingerprint)
    assert base.fingerprint != Seed("http://a.com/q").fingerprint
    assert base.fingerprint != Seed("https://a.com/p").fingerprint
    assert len(base.cache_key) == 12 and base.fingerprint.startswith(base.cache_key.hex())


@pytest.mark.parametrize("url, query, canonical", [
    ("HTTP://User:pw@Host.COM:80/p?b=2&a=1#f", {}, "http://User:pw@host.com/p?a=1&b=2"),
    ("https://h.com:8443", {"z": None}, "https://h.com:8443/?z="),
    ("http://h.com/?", {}, "http://h.com/"),
    ("http://@h.com/p?a=&b", {"c": [2, 1]}, "http://h.com/p?a=&b=&c=1&c=2"),
])
def test_canonical_url_of_odd_shapes_is_pinned(url, query, canonical):
    # what 0.2 computed for these: the cache holds fingerprints made from it
    assert Seed(url, query=query).canonical_url() == canonical


def test_fingerprint_is_stable_across_versions():
    # a changed fingerprint would make every cached seed look new: pin it
    import hashlib

    assert Seed("http://a.com/p?x=1").fingerprint == hashlib.sha1(b"GET http://a.com/p?x=1\n").hexdigest()
    post = Seed("http://a.com/p", method="POST", data="raw")
    assert post.fingerprint == hashlib.sha1(b"POST http://a.com/p\nraw").hexdigest()


def test_request_url_appends_query():
    assert Seed("http://a.com/p?x=1", query={"y": 2}).request_url() == "http://a.com/p?x=1&y=2"
    assert Seed("http://a.com/p", query={"y": [1, 2]}).request_url() == "http://a.com/p?y=1&y=2"


@pytest.mark.parametrize("raw", ["not json", "[1]", '{"url": 5}', '{"v":1}',
                                 '{"url": "http://a.com/", "age": "x"}'])
def test_malformed_wire_seed(raw):
    with pytest.raises(MalformedSeed):
        Seed.from_json(raw)


def test_a_bad_seed_is_a_microspider_error_and_a_value_error():
    from microspider import BadSeed, MicrospiderError

    for bad in (lambda: Seed("ftp://x.com/"), lambda: Seed("http://x.com/", method="PUT"),
                lambda: Seed("http://x.com/", age=-1), lambda: Seed.from_dict({"method": "GET"})):
        with pytest.raises(BadSeed) as info:
            bad()
        assert isinstance(info.value, MicrospiderError) and isinstance(info.value, ValueError)


def test_every_error_class_is_public_and_rooted_at_microspider_error():
    import inspect

    import microspider
    from microspider import errors

    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__]
    assert classes and all(issubclass(c, microspider.MicrospiderError) for c in classes)
    assert {c.__name__ for c in classes} <= set(microspider.__all__)
