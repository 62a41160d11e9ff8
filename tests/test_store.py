"""One contract, run against every store backend (mongomock and the embedded SQLite)."""
import pytest

from microspider import Seed
from microspider.store import SQLiteStore, failure_doc, open_store


@pytest.fixture(params=["mongomock", "sqlite"])
def store(request, tmp_path):
    if request.param == "mongomock":
        s = open_store("mongomock://test", "microspiders", "spider")
    else:
        s = open_store("sqlite:///%s" % (tmp_path / "store.sqlite3"), "microspiders", "spider")
    yield s
    s.close()


def doc(url, error="ValueError", body=b"\x00\xffbody"):
    d = failure_doc(Seed(url), error, "boom", "Traceback ...")
    d.update(status=200, headers={"Content-Type": "text/html"}, body=body, encoding="gbk")
    return d


def test_failures_one_document_per_fingerprint(store):
    store.save_failures([doc("http://a.com/1")], now=100.0)
    store.save_failures([doc("http://a.com/1", error="KeyError", body=b"new")], now=200.0)
    store.save_failures([doc("http://a.com/2")], now=150.0)
    assert store.count_failures() == 2
    docs = {d["url"]: d for d in store.iter_failures()}
    first = docs["http://a.com/1"]
    assert first["attempts"] == 2 and first["first_failed"] == 100.0 and first["last_failed"] == 200.0
    assert first["body"] == b"new" and first["error"] == "KeyError" and first["encoding"] == "gbk"
    assert first["seed"]["url"] == "http://a.com/1" and first["status"] == 200
    assert docs["http://a.com/2"]["body"] == b"\x00\xffbody"
    assert store.failures_by_error() == {"KeyError": 1, "ValueError": 1}
    assert len(list(store.iter_failures(limit=1))) == 1


def test_get_failure_by_its_id(store):
    stored = doc("http://a.com/1")
    store.save_failures([stored, doc("http://a.com/2")], now=100.0)
    found = store.get_failure(stored["_id"])
    assert found["url"] == "http://a.com/1" and found["body"] == b"\x00\xffbody"
    assert found["attempts"] == 1 and found["error"] == "ValueError"
    assert store.get_failure("no-such-id") is None


def test_remove_failures(store):
    store.save_failures([doc("http://a.com/1"), doc("http://a.com/2")])
    store.remove_failures([Seed("http://a.com/1").fingerprint, "not-there"])
    assert [d["url"] for d in store.iter_failures()] == ["http://a.com/2"]
    assert store.clear_failures() == 1 and store.count_failures() == 0


def test_items_upsert_by_id_and_insert_without(store):
    store.save_items([{"_id": "h1", "name": "a"}, {"_id": "h2", "name": "b"}])
    store.save_items([{"_id": "h1", "name": "A"}, {"name": "no id"}])
    items = list(store.iter_items())
    assert store.count_items() == 3
    by_id = {i["_id"]: i for i in items}
    assert by_id["h1"]["name"] == "A" and by_id["h2"]["name"] == "b"
    assert any(i["name"] == "no id" for i in items)
    assert store.clear_items() == 3 and store.count_items() == 0


def test_load_failures_writes_whole_documents(store):
    d = doc("http://a.com/1")
    d.update(attempts=5, first_failed=1.0, last_failed=2.0)
    store.load_failures([d])
    store.load_failures([d])  # idempotent
    (back,) = list(store.iter_failures())
    assert back["attempts"] == 5 and back["first_failed"] == 1.0 and back["body"] == d["body"]


def test_sqlite_store_is_shared_per_spider(tmp_path):
    path = str(tmp_path / "s.sqlite3")
    a, b = SQLiteStore(path, "a"), SQLiteStore(path, "b")
    a.save_items([{"_id": 1}])
    assert a.count_items() == 1 and b.count_items() == 0
    assert SQLiteStore(path, "a").count_items() == 1  # on disk


def test_failures_stream_in_pages_oldest_first(store):
    store.save_failures([doc("http://a.com/%d" % i) for i in range(150)], now=10.0)
    store.save_failures([doc("http://a.com/new")], now=20.0)
    urls = [d["url"] for d in store.iter_failures()]
    assert len(urls) == 151 == len(set(urls)) and urls[-1] == "http://a.com/new"
    assert len(list(store.iter_failures(limit=120))) == 120
