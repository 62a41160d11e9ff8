"""The response handed to parse: a requests.Response with ``.soup``."""
import requests


class Response(requests.Response):
    """A requests.Response whose ``.soup`` is the body parsed by BeautifulSoup with lxml."""

    @property
    def soup(self):
        soup = self.__dict__.get("_soup")
        if soup is None:
            from bs4 import BeautifulSoup

            soup = self.__dict__["_soup"] = BeautifulSoup(
                self.content, "lxml", from_encoding=self.encoding)
        return soup


def as_response(resp):
    """Give a requests.Response the ``soup`` property, in place."""
    resp.__class__ = Response
    return resp


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
