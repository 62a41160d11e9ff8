"""The response handed to parse: a requests.Response with ``.soup``."""
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


def build_response(raw, content, url, method, request_url, headers, body):
    """A Response from a urllib3 answer whose body is already read; no session machinery."""
    resp = Response.__new__(Response)
    resp._content = content
    resp._content_consumed = True
    resp._next = None
    resp.status_code = raw.status
    resp.headers = CaseInsensitiveDict(raw.headers)
    resp.raw = None
    resp.url = url
    resp.encoding = get_encoding_from_headers(resp.headers)
    resp.history = []
    resp.reason = raw.reason
    resp.elapsed = datetime.timedelta(0)
    resp.connection = None
    request = requests.PreparedRequest()
    request.method, request.url, request.headers, request.body = method, request_url, headers, body
    resp.request = request
    if "Set-Cookie" in raw.headers:
        resp.__dict__["_set_cookie"] = raw.headers.getlist("Set-Cookie")
    return resp


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




def from_failure(doc):
    """Rebuild the stored response of a failure document, for re-parsing."""
    resp = Response()
    resp.status_code = doc.get("status") or 0
    resp.headers.update(doc.get("headers") or {})
    resp._content = doc.get("body") or b""
    resp._content_consumed = True
    resp.encoding = doc.get("encoding")
    resp.url = doc.get("url")
    return resp
