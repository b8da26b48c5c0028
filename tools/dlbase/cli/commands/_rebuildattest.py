"""`rebuild-check --attest REF --key KEY`: the attest step around the rebuild, kept out of the verb.

The verb runs the rebuild as always; this wraps it: the rebuild keeps its images (the
statement reads the rebuilt image's dpkg status), the builds' ``done`` events name them,
and they are removed afterwards on every path (a failed build, Ctrl-C) unless ``--keep``,
and only those the rebuild made: not one that was on the daemon before (the published image,
built here by `dlbase build`, is the rebuilt one when the rebuild agrees) or that a tag
names. After the rebuild, :meth:`Attesting.attach` appends the rebuilt-identical statement
when the rebuilt digest is REF's (:mod:`dlbase.trust.rebuilt`), or keeps the
NotReproducible (exit 13, nothing attached) to raise after the result is shown.
Without ``--attest`` every method passes through.
"""

from __future__ import annotations

from typing import Callable

from dlbase.cli import ui
from dlbase.core.errors import NotReproducible
from dlbase.engine import Engine
from dlbase.trust import rebuilt


class Attesting:
    def __init__(self, attestation, engine: Engine, *, keep: bool, host_label: str | None,
                 on_event: Callable, say: Callable[[str], None]):
        self.attestation, self.engine, self.user_keep, self.host_label = attestation, engine, keep, host_label
        self._forward, self.say = on_event, say
        self.built: list[str] = []
        self.refused: NotReproducible | None = None
        # what was on the daemon before: the published image, built here, may be the rebuilt one
        self.existed = engine.image_ids() if attestation is not None else None

    @property
    def keep(self) -> bool:
        """What the rebuild is told: keep the images while the statement is made."""
        return self.user_keep or self.attestation is not None

    def on_event(self, event) -> None:
        """A build's events (and the wheelhouse's fill events, which have no ``kind``), forwarded."""
        if getattr(event, "kind", None) == "done" and getattr(event, "image_id", None):
            self.built.append(event.image_id)
        self._forward(event)

    def __enter__(self) -> "Attesting":
        return self

    def __exit__(self, *_exc) -> None:
        if self.attestation is not None and not self.user_keep:
            self.engine.remove_made(self.built, self.existed, force=True)  # a tagged or earlier copy stays

    def attach(self, body: dict) -> dict:
        """``body`` (``{"ok", **RebuildResult.to_dict()}``) with ``attestation`` when one was made."""
        self.built.extend(str(i) for i in body.get("image_ids") or ())
        if self.attestation is None or not body.get("reproducible"):  # builds that differ fail as always
            return body
        try:
            body["attestation"] = self.attestation.attach_rebuild(self.engine, rebuilt.Rebuild.from_result(body),
                                                                  self.host_label, say=self.say)
        except NotReproducible as exc:
            self.refused = exc
            body.update(ok=False, attestation=None, published=self.attestation.subject.reference)
        return body

    def print_summary(self, body: dict) -> None:
        done = body.get("attestation")
        if done:
            ui.info(f"attested: {self.attestation.subject.reference} rebuilt identical from revision "
                    f"{str(done['revision'])[:12]} ({done['debian_packages']} Debian packages recorded; "
                    f"{done['seconds']:.1f}s, {done['registry_bytes']:,} bytes added to the registry)")

    def raise_if_refused(self) -> None:
        if self.refused is not None:
            raise self.refused  # under --json the CLI merges it into the result: one document
