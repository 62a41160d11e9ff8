"""The response handed to parse, built in one place for every transport.

A transport knows the answer's status, final URL, headers, body and the
request it sent; ``make_response`` turns those into the ``Response`` parse
sees (a requests.Response without the session machinery), and
``from_failure`` does the same for a response kept in the failure store.
"""
import datetime
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

import requests
from requests.cookies import RequestsCookieJar
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers


class Response(requests.Response):
    """A requests.Response whose ``.soup`` is the body parsed by BeautifulSoup with lxml."""

    session = None  # the id of the session that fetched it (``--sessions``)

    @property
    def soup(self):
        """The body parsed by BeautifulSoup with lxml (on first use)."""
        soup = self.__dict__.get("_soup")
        if soup is None:
            from bs4 import BeautifulSoup

            soup = self.__dict__["_soup"] = BeautifulSoup(
                self.content, "lxml", from_encoding=self.encoding)
        return soup

    @property
    def cookies(self):
        """Cookies the answer set (parsed from Set-Cookie on first use)."""
        jar = self.__dict__.get("_cookies")
        if jar is None:
            values = self.__dict__.get("_set_cookie")
            if values is None:
                values = [self.headers["Set-Cookie"]] if "Set-Cookie" in self.headers else []
            jar = self.__dict__["_cookies"] = _cookies_from(values, self.url)
        return jar

    @cookies.setter
    def cookies(self, jar):
        self.__dict__["_cookies"] = jar


def sent_request(method, url, headers, body=None):
    """The request a transport sent, as ``response.request`` shows it (the headers SENT)."""
    request = requests.PreparedRequest()
    # case-insensitive, as requests' own: engines spell header names differently (sec-ch-ua, Sec-Ch-Ua)
    request.method, request.url, request.body = method, url, body
    request.headers = requests.structures.CaseInsensitiveDict(headers or {})
    return request


def make_response(status, url, headers, content, request=None, reason="", encoding=None,
                  set_cookie=None, **extras):
    """The Response parse gets; every transport (and ``from_failure``) builds it here.

    `headers`: the answer's (any mapping; a CaseInsensitiveDict is taken, not
    copied); `encoding`: None reads it from
    Content-Type; `set_cookie`: the Set-Cookie values, one per header (None:
    read them from `headers`); `extras`: attributes of this transport's
    answers (``screenshot``, ``xhr``, ``http_version``...).
    """
    resp = Response.__new__(Response)
    resp._content = content
    resp._content_consumed = True
    resp._next = None
    resp.status_code = int(status or 0)
    resp.headers = headers if type(headers) is CaseInsensitiveDict else CaseInsensitiveDict(headers)
    resp.raw = None
    resp.url = url
    resp.encoding = encoding if encoding is not None else get_encoding_from_headers(resp.headers)
    resp.history = []
    resp.reason = reason
    resp.elapsed = datetime.timedelta(0)
    resp.connection = None
    resp.request = request
    if set_cookie is None and hasattr(headers, "getlist") and "Set-Cookie" in headers:
        set_cookie = headers.getlist("Set-Cookie")  # each value apart, where CaseInsensitiveDict joins
    if set_cookie:
        resp.__dict__["_set_cookie"] = list(set_cookie)
    resp.__dict__.update(extras)
    return resp


def from_failure(doc):
    """Rebuild the stored response of a failure document, for re-parsing."""
    return make_response(doc.get("status"), doc.get("url"), doc.get("headers") or {},
                         doc.get("body") or b"", encoding=doc.get("encoding"))


def _cookies_from(values, url):
    jar = RequestsCookieJar()
    host = urlsplit(url or "").hostname or ""
    for value in values:
        try:
            parsed = SimpleCookie()
            parsed.load(value)
        except CookieError:
            continue
        for name, morsel in parsed.items():
            jar.set(name, morsel.value, domain=morsel["domain"] or host, path=morsel["path"] or "/")
    return jar
