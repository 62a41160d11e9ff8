"""The response handed to parse, built in one place for every transport.

A transport knows the answer's status, final URL, headers, body and the
request it sent; ``make_response`` turns those into the ``Response`` parse
sees (a requests.Response without the session machinery), and
``from_failure`` does the same for a response kept in the failure store.

Text is decoded as a browser decodes it (``decide_encoding``): a byte-order
mark, else the charset of Content-Type, else ``<meta charset>`` /
``http-equiv`` in the first 4 KB, else the body itself: UTF-8 when it is valid
UTF-8, else what charset detection finds, else windows-1252.  Labels map as in
browsers (gb2312 and gbk read as gb18030, latin-1 as windows-1252), never
ISO-8859-1 by default.
"""
import datetime
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urljoin, urlsplit

import requests
from requests.cookies import RequestsCookieJar
from requests.structures import CaseInsensitiveDict
from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding, read_bom, resolve_encoding

DETECT_BYTES = 65536     # how much of an undeclared, non-UTF-8 body charset detection reads


class Response(requests.Response):
    """A requests.Response with ``.css``, ``.xpath`` (parsel, lxml speed), ``.soup`` (BeautifulSoup),
    ``.urljoin``, and text decoded as a browser decodes it (``.encoding`` names the codec).

    >>> response.css("h1::text").get()
    >>> [response.urljoin(href) for href in response.css("a::attr(href)").getall()]
    """

    session = None  # the id of the session that fetched it (``--sessions``)

    @property
    def encoding(self):
        """The codec ``.text``, ``.soup`` and the selectors decode with (decided on first use)."""
        found = self.__dict__.get("_encoding")
        if found is None:
            found = self.__dict__["_encoding"] = decide_encoding(self.headers, self._content or b"")
        return found

    @encoding.setter
    def encoding(self, value):
        self.__dict__["_encoding"] = value
        for derived in ("_text", "_soup", "_selector"):
            self.__dict__.pop(derived, None)

    @property
    def text(self):
        """The body decoded with ``.encoding`` (undecodable bytes replaced), kept after first use."""
        text = self.__dict__.get("_text")
        if text is None:
            content = self._content or b""
            marked, bom = read_bom(content)
            if bom and resolve_encoding(marked) == resolve_encoding(self.encoding):
                content = content[len(bom):]
            try:
                text = str(content, self.encoding, errors="replace")
            except LookupError:   # an encoding Python does not know: what a browser would fall back to
                text = str(body, "cp1252", errors="replace")
            self.__dict__["_text"] = text
        return text

    @property
    def selector(self):
        """A parsel Selector over ``.text``, built once (``.css`` and ``.xpath`` use it)."""
        found = self.__dict__.get("_selector")
        if found is None:
            from parsel import Selector

            kind = "xml" if _is_xml(self.headers.get("Content-Type", "")) else "html"
            found = self.__dict__["_selector"] = Selector(text=self.text, type=kind)
        return found

    def css(self, query):
        """The parsel SelectorList of CSS `query` (``::text``, ``::attr(name)``; ``.get()``, ``.getall()``)."""
        return self.selector.css(query)

    def xpath(self, query, **variables):
        """The parsel SelectorList of XPath `query` (``$name`` variables as keyword arguments)."""
        return self.selector.xpath(query, **variables)

    def urljoin(self, url):
        """`url` made absolute against the page's ``<base href>`` if it has one, else its URL."""
        base = self.__dict__.get("_base")
        if base is None:
            base = self.url or ""
            if b"<base" in (self._content or b"")[:8192].lower():
                found = self.xpath("//base/@href").get()
                if found:
                    base = urljoin(base, found.strip())
            parts = urlsplit(base)
            base = self.__dict__["_base"] = (base, "%s://%s" % (parts.scheme, parts.netloc))
        # the two common forms without urllib's full resolution (a link per call, hundreds a page)
        if "/." not in url and "\\" not in url:
            if url.startswith(("http://", "https://")):
                return url
            if url.startswith("/") and not url.startswith("//"):
                return base[1] + url
        return urljoin(base[0], url)

    @property
    def soup(self):
        """The body parsed by BeautifulSoup with lxml (on first use), from ``.text``."""
        soup = self.__dict__.get("_soup")
        if soup is None:
            from bs4 import BeautifulSoup

            soup = self.__dict__["_soup"] = BeautifulSoup(self.text, "lxml")
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
    request.method, request.url, request.headers, request.body = method, url, headers, body
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
    if encoding is not None:
        resp.__dict__["_encoding"] = encoding   # else decided from headers and body on first use
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
    """Rebuild the stored response of a failure document, for re-parsing.

    Its text is decoded from the stored headers and body as at the fetch (not with
    the stored ``encoding``: before 0.4 that could be requests' ISO-8859-1 default)."""
    return make_response(doc.get("status"), doc.get("url"), doc.get("headers") or {},
                         doc.get("body") or b"")


def decide_encoding(headers, content):
    """The codec a browser decodes this body with (see the module docstring)."""
    declared = (read_bom(content)[0] or http_content_type_encoding(headers.get("Content-Type", ""))
                or html_body_declared_encoding(content[:4096]))
    if declared:
        found = resolve_encoding(declared)
        if found:
            return found
    try:
        content.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    return _detect(content[:DETECT_BYTES]) or "cp1252"


def _detect(content):
    from charset_normalizer import from_bytes

    best = from_bytes(content).best()
    return resolve_encoding(best.encoding) if best is not None else None


def _is_xml(content_type):
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind.endswith("xml") and "html" not in kind


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
