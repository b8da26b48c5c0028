"""What a registry's answer must look like before dlbase uses it.

Why a module: a registry (or a proxy, a captive portal, an attacker who can push) can
answer anything with status 200: an HTML page, random bytes, a manifest that is ``[]``,
a descriptor without ``digest``, a tag list that is a JSON list. Each of these used to
surface as "internal error, this is a bug". Every shape is checked here and refused with
a :class:`~dlbase.core.errors.RegistryError` (exit 11) that says what was wrong. Pure.
"""

from __future__ import annotations

from typing import Any

from dlbase.core import digest as digests
from dlbase.core import documents
from dlbase.core.errors import RegistryError


def _looks_like(body: bytes) -> str:
    head = body[:200].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<")):
        return "an HTML page"
    if not body:
        return "an empty body"
    try:
        body[:200].decode("utf-8")
    except UnicodeDecodeError:
        return "binary data"
    return f"text that is not JSON ({body[:60].decode('utf-8', 'replace')!r})"


_HINT = "is this address a registry (not a web page or a proxy's login page)?"


def json_object(body: bytes, what: str, kind: str = "registry-json") -> dict[str, Any]:
    """``body`` as a JSON object, read by the bounded reader (``kind``: its row of
    :data:`dlbase.core.documents.LIMITS`), or a RegistryError saying what it is instead."""
    if not body[:200].lstrip()[:1] or body[:200].lstrip()[:1] not in b'{["-0123456789tfn':  # JSON starts so
        raise RegistryError(f"{what}: the server answered {_looks_like(body)}, not JSON", hint=_HINT)
    source = documents.Source(what, RegistryError, _HINT)
    return documents.expect_object(documents.parse_json(body, kind, source), source, "the answer")


def descriptor(value: Any, where: str) -> dict[str, Any]:
    """One OCI descriptor (a layer or config): an object with a valid ``digest``, a
    string ``mediaType``, an integer ``size`` and string ``annotations`` when present."""
    if not isinstance(value, dict):
        raise RegistryError(f"{where} is {documents.type_word(value)}, not a descriptor object")
    found = value.get("digest")
    if not isinstance(found, str):
        raise RegistryError(f"{where} has no digest")
    why = digests.problem(found)
    if why:
        raise RegistryError(f"{where}: digest {found!r}: {why}")
    if not isinstance(value.get("mediaType", ""), str):
        raise RegistryError(f"{where}: mediaType is not a string")
    size = value.get("size", 0)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise RegistryError(f"{where}: size {size!r} is not a byte count")
    notes = value.get("annotations") or {}
    if not isinstance(notes, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in notes.items()):
        raise RegistryError(f"{where}: annotations are not a map of strings")
    return value


def _descriptors(doc: dict[str, Any], key: str, where: str, each: str) -> list[dict[str, Any]]:
    """The checked descriptors of ``doc[key]`` ([] when absent), each named ``{where} {each} N``."""
    found = doc.get(key)
    if found is None:
        return []
    if not isinstance(found, list):
        raise RegistryError(f"{where}: {key} is {documents.type_word(found)}, not an array")
    return [descriptor(item, f"{where} {each} {i + 1}") for i, item in enumerate(found)]


def layers(manifest: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """The checked layer descriptors of an image manifest ([] when it has none)."""
    return _descriptors(manifest, "layers", where, "layer")


def manifests(index: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """The checked descriptors of an image index's ``manifests`` ([] when it has none),
    ``artifactType`` a string where present (the referrers API's entries carry it)."""
    checked = _descriptors(index, "manifests", where, "entry")
    for i, item in enumerate(checked):
        if not isinstance(item.get("artifactType", ""), str):
            raise RegistryError(f"{where} entry {i + 1}: artifactType is not a string")
    return checked


def config_digest(manifest: dict[str, Any], where: str) -> str | None:
    """The config digest of an image manifest; None for an index (it has no config)."""
    config = manifest.get("config")
    return None if config is None else descriptor(config, f"{where} config")["digest"]


def tags_page(body: bytes, what: str) -> list[str]:
    """The tags of one page of ``/tags/list``: ``{"name": ..., "tags": [str, ...] | null}``."""
    doc = json_object(body, what)
    tags = doc.get("tags")
    if tags is None:
        return []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise RegistryError(f"{what}: 'tags' is not a list of strings")
    return tags


def token(body: bytes, what: str) -> str:
    """The bearer token of a token service's answer (``token`` or ``access_token``)."""
    doc = json_object(body, what)
    value = doc.get("token") or doc.get("access_token")
    if not isinstance(value, str) or not value:
        raise RegistryError(f"{what}: the answer carries no token")
    return value


def content_digest(header: str | None, what: str) -> str | None:
    """A ``Docker-Content-Digest`` header, checked (None when absent)."""
    if not header:
        return None
    why = digests.problem(header)
    if why:
        raise RegistryError(f"{what}: the registry's Docker-Content-Digest {header!r} is not a digest: {why}")
    return header
