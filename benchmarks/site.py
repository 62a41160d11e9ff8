"""The benchmark's static site: N deterministic pages of 8-12 KB with 20-60 links each.

Page ``i`` lives at ``/p/i.html``; its links point at other pages of the site
(absolute paths), so a spider that followed them would stay inside the set.
The benchmark spiders do not follow links: the page set is exactly N.
"""
import os
import random

WORDS = ("hotel city room breakfast opening renovation review price guest star pool garden "
         "station airport river market museum quiet family business suite view terrace").split()


def page_path(i):
    return "/p/%d.html" % i


def page_urls(base, n):
    """The N page URLs under `base` (``http://127.0.0.1:PORT``), in order."""
    return [base + page_path(i) for i in range(n)]


def page(i, n):
    """The bytes of page i of an n-page site (8-12 KB, 20-60 links; same input, same bytes)."""
    rng = random.Random(i)
    size = rng.randint(8 * 1024, 12 * 1024)
    links = rng.randint(20, 60)
    head = ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Page %d</title></head>\n"
            "<body><h1>Page %d</h1>\n" % (i, i))
    tail = "</body></html>\n"
    anchors = ['<a href="%s">%s</a>' % (page_path(rng.randrange(n)), rng.choice(WORDS))
               for _ in range(links)]
    budget = size - len(head) - len(tail) - sum(len(a) + 1 for a in anchors)
    words = rng.choices(WORDS, k=budget // 5)
    paras, used, start = [], 0, 0
    while start < len(words):
        k = rng.randint(8, 30)
        para = "<p>%s</p>\n" % " ".join(words[start:start + k])
        if used + len(para) > budget:
            break
        paras.append(para)
        used += len(para)
        start += k
    paras.append("<p>%s</p>\n" % ("x" * max(budget - used - 8, 0)))
    body = []
    for k, para in enumerate(paras):
        body.append(para)
        share = anchors[k * len(anchors) // len(paras):(k + 1) * len(anchors) // len(paras)]
        if share:
            body.append(" ".join(share) + "\n")
    text = head + "".join(body) + tail
    return text.encode("utf-8")


def link_count(i):
    """How many <a> elements page i has (what the benchmark parse counts)."""
    rng = random.Random(i)
    rng.randint(8 * 1024, 12 * 1024)
    return rng.randint(20, 60)


def write_site(root, n):
    """Write the n pages under root/p/; returns the total size in bytes."""
    os.makedirs(os.path.join(root, "p"), exist_ok=True)
    total = 0
    for i in range(n):
        data = page(i, n)
        total += len(data)
        with open(os.path.join(root, "p", "%d.html" % i), "wb") as f:
            f.write(data)
    return total
