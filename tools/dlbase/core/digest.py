"""Content digests (``sha256:<hex>``): their syntax, and the digest of some bytes.

Why one module: an image reference, a registry answer, a signature payload and a push
stream all carry digests, and each used to check them its own way (one accepted 64
``z``, another upper-case hex, a third only a length). The rule here is the one of
opencontainers/go-digest, which the registry and the Docker daemon apply: an algorithm
dlbase knows, followed by exactly its number of lower-case hex digits. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re

#: Algorithm -> number of hex digits (go-digest's registered algorithms).
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
#: A sha256 digest inside other text (a push stream's "digest: sha256:... size: N").
SHA256_PATTERN = r"sha256:[0-9a-f]{64}"
_HEX = re.compile(r"^[0-9a-f]+\Z")
_ALGORITHM = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*\Z")


def problem(text: str) -> str | None:
    """Why ``text`` is not a digest, in words for a message; None when it is one.

    Callers pick the error type: a digest the user typed is invalid input, one a
    registry sent is a registry error."""
    algorithm, sep, encoded = text.partition(":")
    if not sep:
        return f"'{text}' has no ':' between algorithm and hex (e.g. sha256:<64 hex digits>)"
    if not _ALGORITHM.match(algorithm):
        return f"'{algorithm}' is not a digest algorithm"
    if algorithm not in ALGORITHMS:
        return f"digest algorithm '{algorithm}' is not supported (only {', '.join(ALGORITHMS)})"
    width = ALGORITHMS[algorithm]
    if len(encoded) != width:
        return f"a {algorithm} digest has {width} hex digits, this one {len(encoded)}"
    if not _HEX.match(encoded):
        why = "upper-case hex" if _HEX.match(encoded.lower()) else "characters other than 0-9 and a-f"
        return f"the {algorithm} digest has {why} (it must be lower-case hex)"
    return None


def is_digest(text: str) -> bool:
    return problem(text) is None


def is_sha256(text: str) -> bool:
    return text.startswith("sha256:") and is_digest(text)


def sha256_of(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``: what a registry names a blob or manifest by."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hex_part(digest: str) -> str:
    """The hex after ``sha256:`` (tags such as ``sha256-<hex>.sig`` are built from it).
    ValueError when ``digest`` is not a sha256 digest."""
    if not is_sha256(digest):
        raise ValueError(f"{digest!r} is not a sha256 digest")
    return digest.partition(":")[2]
