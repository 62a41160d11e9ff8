"""Reading a big key a chunk at a time, so no command moves more than a few thousand members."""
import itertools


def by_index(read, size):
    """Lists from ``read(start, stop)`` (inclusive bounds, as LRANGE/ZRANGE), `size` at a time."""
    start = 0
    while True:
        chunk = read(start, start + size - 1)
        if chunk:
            yield chunk
        if len(chunk) < size:
            return
        start += size


def batched(iterable, size):
    """Lists of up to `size` items of `iterable` (a SCAN iterator, say)."""
    iterator = iter(iterable)
    while True:
        chunk = list(itertools.islice(iterator, size))
        if not chunk:
            return
        yield chunk
