"""`dlbase verify|scan REGISTRY/REPO@sha256:... --attest --key KEY` and `dlbase rebuild-check
VARIANT --attest REF --key KEY`: the parts around them.

The key (and its passphrase) is loaded before anything is pulled, so a wrong passphrase
costs nothing; the image is pulled by digest (scan: only when the daemon lacks it),
verified, scanned or rebuilt as usual, and the result is signed and appended to the image's
``.att`` list. Only the attestation is written to the registry; the image is never
pushed again.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

from dlbase.cli.commands._signing import private_key
from dlbase.engine import Engine
from dlbase.core import reference
from dlbase.core.errors import DlbaseError, InvalidInput
from dlbase.define.spec import VARIANT_LABEL
from dlbase.cli.commands.common import registry_client
from dlbase.engine import credentials
from dlbase.trust import attach, evidence, keys


@dataclass
class Attestation:
    subject: evidence.Subject
    pair: keys.KeyPair

    def pull(self, engine: Engine, say: Callable[[str], None]) -> str:
        """Pull the digest; the reference verify then resolves."""
        say(f"pulling {self.subject.reference}")
        creds = credentials.for_registry(self.subject.host)
        engine.pull(self.subject.name, self.subject.digest,
                    auth_config={"username": creds[0], "password": creds[1]} if creds else None)
        return self.subject.reference

    def pull_dlbase_image(self, engine: Engine, say: Callable[[str], None]) -> str:
        """Pull the digest, and refuse (exit 2, nothing attached) an image dlbase did not
        build: without its labels there is no variant, lock or flavor to verify it against,
        and such an image may not even start (an artifact's manifest, a scratch image), which
        surfaced as the daemon's "exec: sleep: not found". What this pull added is removed."""
        existed = engine.image_exists(self.subject.reference)
        ref = self.pull(engine, say)
        if VARIANT_LABEL in engine.image_labels(ref):
            return ref
        if not existed:
            with contextlib.suppress(DlbaseError):
                engine.remove_image(ref)
        raise InvalidInput(f"{self.subject.reference} is not an image dlbase built (it carries no {VARIANT_LABEL} "
                           "label): there is no variant to verify it against, so nothing was attested",
                           hint="give the digest of an image `dlbase push` published (`dlbase trust REF` prints "
                                "it); a signature or attestation digest is not an image")

    def ensure_local(self, engine: Engine, say: Callable[[str], None]) -> str:
        """The digest's reference on the daemon, pulled only when it is not there yet
        (a scan reads files; the layers the daemon holds under that digest are the image)."""
        if engine.image_exists(self.subject.reference):
            return self.subject.reference
        return self.pull(engine, say)

    def attach_statements(self, attestations: list[tuple[str, dict]], say: Callable[[str], None]) -> dict:
        """Sign and append these (predicate type, predicate) to the image's attestations."""
        return evidence.attach(registry_client(self.subject.host), self.subject, self.pair, sign=False,
                               attestations=attestations, on_step=say)

    def attach(self, project, engine: Engine, report, host_label: str | None, say: Callable[[str], None]) -> dict:
        client = registry_client(self.subject.host)
        return attach.for_verify(project, engine, client, self.subject, self.pair, report,
                                 host_label=host_label, say=say)

    def attach_rebuild(self, engine: Engine, rebuild, host_label: str | None, say: Callable[[str], None]) -> dict:
        """A rebuilt-identical statement, only when ``rebuild`` (a :class:`dlbase.trust.rebuilt.Rebuild`)
        got this digest; NotReproducible and nothing attached otherwise."""
        return attach.for_rebuild(engine, registry_client(self.subject.host), self.subject, self.pair, rebuild,
                                  host_label=host_label, say=say)


def prepare(ref: str | None, key: str | None, *, tag_ok: bool = False) -> Attestation:
    """The subject and the loaded key. ``tag_ok``: REF may be a tag, resolved here, once, to
    the digest everything after works on (rebuild-check: the digest is what is compared)."""
    wanted = "REGISTRY/REPO@sha256:... or REGISTRY/REPO:TAG" if tag_ok else "REGISTRY/REPO@sha256:..."
    parsed = reference.parse(ref or "", where="--attest IMAGE") if ref else None
    if parsed is None or not (parsed.digest or tag_ok):
        raise InvalidInput(f"--attest needs {wanted} (got {ref!r})",
                           hint="attest a digest, never a tag: `dlbase trust REF` prints the pinned reference")
    if parsed.registry is None:
        raise InvalidInput(f"--attest: {ref!r} names no registry host",
                           hint=f"name the registry the image is in, e.g. 127.0.0.1:5000/{parsed.repository}@...")
    if not key:
        raise InvalidInput("--attest needs --key KEY (the private signing key)",
                           hint="give cosign.key or env://DLBASE_SIGNING_KEY")
    pair = private_key(key)  # the key (and passphrase) before the registry is asked or anything built
    subject, _tag = evidence.parse_subject(ref, registry_client)
    return Attestation(subject, pair)
