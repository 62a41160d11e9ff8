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
import codecs
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
            content = self._body()
            try:
                text = str(content, self.encoding, errors="replace")
            except LookupError:   # an encoding Python does not know: what a browser would fall back to
                text = str(body, "cp1252", errors="replace")
            self.__dict__["_text"] = text
        return text

    def _body(self):
        """The body without the byte-order mark of its encoding."""
        content = self._content or b""
        marked, bom = read_bom(content)
        if bom and resolve_encoding(marked) == resolve_encoding(self.encoding):
            content = content[len(bom):]
        return content

    @property
    def selector(self):
        """A parsel Selector of the body decoded with ``.encoding``, built once (``.css`` and
        ``.xpath`` use it); lxml reads the bytes itself, without a str copy of the page."""
        found = self.__dict__.get("_selector")
        if found is None:
            from parsel import Selector

            kind = "xml" if _is_xml(self.headers.get("Content-Type", "")) else "html"
            body = self._body()
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                body = None
            if body:
                found = Selector(body=body, encoding=self.encoding, type=kind)
            else:
                found = Selector(text=self.text, type=kind)
            self.__dict__["_selector"] = found
        return found

    def css(self, query):
        """The parsel SelectorList of CSS `query` (``::text``, ``::attr(name)``; ``.get()``, ``.getall()``)."""
        return self.selector.css(query)

    def xpath(self, query, **variables):
        """The parsel SelectorList of XPath `query` (``$name`` variables as keyword arguments)."""
        return self.selector.xpath(query, **variables)

    def urljoin(self, url):
        """`url` made absolute against the page's ``<base href>`` if it has one, else its URL.

        As ``urllib.parse.urljoin`` (RFC 3986), with the common forms of a link (absolute,
        rooted, relative to the page's folder) resolved without its full parse: a page
        may have thousands of links."""
        base = self.__dict__.get("_base")
        if base is None:
            base = self.__dict__["_base"] = _Base(self.url or "", self._content or b"", self.xpath)
        return base.join(url)

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


class _Base:
    """A page's base URL, split once, and the fast paths of ``Response.urljoin``."""

    def __init__(self, url, content, xpath):
        if b"<base" in content[:8192].lower():
            found = xpath("//base/@href").get()
            if found:
                url = urljoin(url, found.strip())
        self.url = url
        parts = urlsplit(url)
        self.plain = parts.scheme in ("http", "https") and bool(parts.netloc)
        self.origin = "%s://%s" % (parts.scheme, parts.netloc)
        self.folder = parts.path[:parts.path.rfind("/") + 1] or "/"

    def join(self, url):
        if not self.plain or "\\" in url or not url or url[0] in "?#":
            return urljoin(self.url, url)
        if url.startswith(("http://", "https://")):
            return url if "/." not in url else urljoin(self.url, url)
        if url[0] == "/":
            if url.startswith("//"):
                return urljoin(self.url, url)
            path = url
        else:
            colon = url.find(":")
            if colon != -1 and "/" not in url[:colon] and "?" not in url[:colon] and "#" not in url[:colon]:
                return urljoin(self.url, url)   # a scheme of its own (mailto:, javascript:, ftp:)
            path = self.folder + url
        if "." in path:
            cut = min([i for i in (path.find("?"), path.find("#")) if i != -1] or [len(path)])
            if "/." in path[:cut] or path.startswith("."):
                path = _remove_dots(path[:cut]) + path[cut:]
        return self.origin + path


def _remove_dots(path):
    """RFC 3986 5.2.4 on an absolute path (what urljoin does to ./ and ../ segments)."""
    out = []
    segments = path.split("/")
    for i, segment in enumerate(segments[1:], 1):
        last = i == len(segments) - 1
        if segment == "..":
            if len(out) > 0:
                out.pop()
            if last:
                out.append("")
        elif segment == ".":
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/" + "/".join(out)


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
