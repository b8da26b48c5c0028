"""Read a package index's simple API (PEP 691 JSON, PEP 503 HTML as a fallback).

Why a module of its own: filling a wheelhouse (build/) and reading a release's wheel
metadata (define/wheelmeta.py) both list a project's files on an index. The reader sits
at the define level so that neither points up a floor to reach the other's private
function. Every listing is one HTTP operation under one deadline, with its body capped
(:mod:`dlbase.core.httpget`): an index that never answers, or answers one byte at a time,
is an error naming it, not a hang.
"""

from __future__ import annotations

import html.parser
from typing import NamedTuple
from urllib.parse import urldefrag, urljoin, urlsplit

import requests
from packaging.utils import canonicalize_name

from dlbase.core import documents, httpget
from dlbase.core.errors import BadAnswer, Unreachable

SIMPLE_ACCEPT = ("application/vnd.pypi.simple.v1+json, "
                 "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1")
#: A project page's size cap: torch's page on the PyTorch index is a few MB.
PAGE_MAX = documents.LIMITS["index-answer"].max_bytes


class IndexFile(NamedTuple):
    """One file of a project as the index lists it."""

    filename: str
    url: str
    sha256: str | None
    size: int | None  # bytes, when the index gives it (PEP 700)


class _LinkParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href") if tag == "a" else None
        if href:
            self.links.append(href)


def files(session: requests.Session, index_url: str, project: str, timeout: float,
          *, limit: float = httpget.DEADLINE_S) -> list[IndexFile] | None:
    """Every file of ``project`` on ``index_url``; ``None`` when the index does not have
    the project. ``timeout`` bounds one read, ``limit`` the whole listing."""
    page = urljoin(index_url.rstrip("/") + "/", canonicalize_name(project) + "/")
    what = f"the file list of {project}"
    try:
        answer = httpget.get(session, page, what=what, cap=PAGE_MAX, limit=limit, read_timeout=timeout,
                             headers={"Accept": SIMPLE_ACCEPT})
    except (Unreachable, BadAnswer) as exc:
        raise Unreachable(f"index {index_url} cannot be reached (while listing {project})",
                          hint="fill the wheelhouse on a machine that can reach the index",
                          details=[f"url: {page}", exc.message]) from None
    if answer.status == 404:
        return None
    if answer.status >= 400:
        raise Unreachable(f"index {index_url} answered HTTP {answer.status} for {project}",
                          details=[f"url: {page}"])
    if "json" in answer.headers.get("Content-Type", ""):
        return _from_json(answer, index_url, project)
    parser = _LinkParser()
    parser.feed(answer.text)
    out = []
    for href in parser.links:
        url, frag = urldefrag(urljoin(answer.url, href))
        filename = urlsplit(url).path.rsplit("/", 1)[-1]
        sha = frag[len("sha256="):] if frag.startswith("sha256=") else None
        out.append(IndexFile(filename, url, sha, None))
    return out


def _from_json(answer: httpget.Answer, index_url: str, project: str) -> list[IndexFile]:
    """The files of a PEP 691 page, read by the bounded reader with each field the listing
    uses checked: an index answering ``[]``, nested 100,000 deep, or listing a file without
    a ``url`` is an error naming the page (exit 11), never an internal one."""
    source = documents.Source(answer.url, BadAnswer, f"the index {index_url} (or a proxy in front of it) is broken; "
                                                     "try another with --index")
    page = documents.expect_object(documents.parse_json(answer.body, "index-answer", source), source,
                                   f"the file list of {project}")
    out = []
    for i, f in enumerate(documents.expect(page, "files", list, source, required=False, default=[])):
        where = f"files[{i}]"
        hashes = documents.expect(f, "hashes", dict, source, where=where, required=False, default={})
        out.append(IndexFile(documents.expect(f, "filename", str, source, where=where),
                             urljoin(answer.url, documents.expect(f, "url", str, source, where=where)),
                             documents.expect(hashes, "sha256", str, source, where=f"{where}.hashes", required=False),
                             documents.expect(f, "size", int, source, where=where, required=False)))
    return out
