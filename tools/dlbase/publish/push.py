"""Publishing: push a verified image's immutable and moving tags to a registry, then prove
what the registry holds.

Order of a push (each step raises a typed error; the CLI maps it to an exit code):

1. resolve the image (a variant's local moving tag, or any reference/ID) and its two
   tags: the immutable one ends with the image's ``dlbase.lock-hash`` label;
2. refuse an image without a passed verification record (``NotVerified``), unless
   ``force`` -- the report then says ``forced: true``;
3. ask the registry what the two tags point at *before* pushing. An immutable tag that
   exists and names another image (its manifest's config digest is not this image ID)
   is a ``TagConflict``: nothing is pushed. The same image is fine (nothing to change);
4. push the immutable tag, then the moving one (errors inside the push stream are
   detected by the engine); read each manifest back and check its digest (computed
   from the bytes) and that it is this image (:func:`names_image`). With
   ``--compression zstd`` the layers are re-compressed and pushed by the registry
   client instead, blobs first and each tag's manifest last (:mod:`.zstd_export`,
   :mod:`.zstd_push`); an immutable tag that holds the image with the other compression
   is a ``TagConflict`` too (replacing it would change the digest signatures name);
5. pull by digest and run one command in the pulled reference (see :func:`pull_check`);
6. write the push report and SBOM.

The registry-qualified local tags needed by ``docker push`` are removed again on every
path out (success, failure, Ctrl-C), so no local tag is left naming a half-pushed image.
Credentials are read from the environment or the Docker config, handed to the daemon
for the push, and never written anywhere: the report records only their source.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dlbase.verify import records
from dlbase.engine import credentials
from dlbase.registry import answers
from dlbase.registry import client as registry
from dlbase.examine import report
from dlbase.engine import Engine, RunResult, TransferEvent
from dlbase.core import digest as digests
from dlbase.core import reference
from dlbase.core.errors import Interrupted, InvalidInput, NotVerified, RegistryError, TagConflict
from dlbase.core.imageref import repo_tags
from dlbase.image.local_image import locate
from dlbase.define.project import Project
from dlbase.publish import compression, zstd_export, zstd_push
from dlbase.define import labels as image_labels
from dlbase.registry import mediatypes

PULL_CHECK_COMMAND = ["python", "-c", "import sys; print('dlbase pull check: python', sys.version.split()[0])"]


@dataclass
class LocalImage:
    image_id: str
    repository: str
    immutable: str
    moving: str | None
    variant: str | None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def tags(self) -> list[str]:
        return [self.immutable] + ([self.moving] if self.moving else [])


def _local_tags(info: dict) -> list[tuple[str, str]]:
    """(repository, tag) of each of the image's tags that names no registry (the ones
    `dlbase build` made; registry-qualified tags are push leftovers or someone else's)."""
    found = []
    for text in repo_tags(info):
        ref = reference.parse(text, where="local tag")
        if ref.registry is None and ref.tag:
            found.append((ref.repository, ref.tag))
    return found


def resolve(project: Project, engine: Engine, target: str) -> LocalImage:
    """The local image a push is about, and its immutable and moving tags."""
    found = locate(project, engine, target, hint=f"run `dlbase build {target}` and `dlbase verify {target}` first")
    wanted_repo = None
    if found.by_variant:
        wanted_repo = project.matrix.repository
    elif not target.startswith("sha256:"):
        named = reference.parse(target, where="IMAGE")
        wanted_repo = named.name if named.tag and not named.digest else None
    info, labels = found.inspect, found.labels
    lock_hash = labels.get(image_labels.LOCK_HASH)
    if not lock_hash:
        raise InvalidInput(f"{target} carries no dlbase.lock-hash label: not an image dlbase built",
                           hint="push images built by `dlbase build`")
    local = _local_tags(info)
    immutables = [(r, t) for r, t in local if t.endswith(f"-{lock_hash}") and (wanted_repo in (None, r))]
    if not immutables:
        raise InvalidInput(f"{target} has no immutable tag (one ending in -{lock_hash})",
                           hint="only images tagged by `dlbase build` (after reading them back) can be pushed")
    repo, immutable = sorted(immutables)[0]
    others = sorted(t for r, t in local if r == repo and t != immutable and not t.endswith(f"-{lock_hash}"))
    moving = None
    variant = labels.get(image_labels.VARIANT)
    if found.spec is not None and found.spec.name == variant:
        moving = found.spec.moving_tag if found.spec.moving_tag in others else None
    elif len(others) == 1:
        moving = others[0]
    return LocalImage(image_id=info["Id"], repository=repo, immutable=immutable, moving=moving,
                      variant=variant, labels=labels)


def check_publishable(project: Project, image: LocalImage, *, force: bool) -> dict:
    record = records.lookup(project, image.image_id)
    if not (record and record.get("passed")):
        state = "never verified" if record is None else "failed its verification"
        if not force:
            raise NotVerified(f"image {image.image_id[:19]} ({image.repository}:{image.immutable}) {state}; "
                              "refusing to push it",
                              hint=f"run `dlbase verify {image.variant or image.repository + ':' + image.immutable}`"
                                   " (or push with --force, which the report records)")
    return report.verification(project, image.image_id, forced=force and not (record and record.get("passed")))


def names_image(manifest: dict, digest: str, image_id: str, where: str) -> bool:
    """A registry's manifest is of this local image: its digest is the image ID (the
    containerd image store's ID is the manifest's digest), its config digest is (the
    classic store's ID), or it is the zstd form dlbase made of it (its annotation)."""
    notes = manifest.get("annotations")
    source = notes.get(compression.SOURCE_ANNOTATION) if isinstance(notes, dict) else None
    return image_id in (digest, answers.config_digest(manifest, where), source)


def publish(project: Project, engine: Engine, image: LocalImage, host: str, *, force: bool = False,
            on_event: Callable[[TransferEvent], None] | None = None, say: Callable[[str], None] = lambda _m: None,
            pull_check_command: list[str] | None = None, signer: object | None = None,
            host_label: str | None = None, scan: object | None = None,
            layer_compression: str = compression.GZIP) -> dict:
    """Push, read back, pull back, report. Returns the push report (also written to disk).

    ``layer_compression``: ``gzip`` pushes with the daemon (the layers as it stores them);
    ``zstd`` re-compresses them and pushes an OCI manifest with the registry client
    (:mod:`.zstd_export`, :mod:`.zstd_push`). With ``signer`` (a dlbase.trust.keys.KeyPair)
    the pushed digest is then signed and its SBOM, provenance and verification attached in
    the registry (dlbase.trust), and with ``scan`` (a dlbase.trust.attach.ScanInputs) its
    scan and VEX."""
    if layer_compression not in compression.CHOICES:
        raise InvalidInput(f"compression {layer_compression!r} is not one of {', '.join(compression.CHOICES)}")
    verification = check_publishable(project, image, force=force)
    creds, creds_from = credentials.source(host)
    client = registry.RegistryClient(host, credentials=creds)
    say(f"asking {host} what {image.repository} holds now")
    before = {t: client.tag_digest_or_none(image.repository, t) for t in image.tags}
    existing: bytes | None = None
    if before[image.immutable]:
        where = f"{host}/{image.repository}:{image.immutable}"
        manifest, existing, _digest = client.manifest_with_bytes(image.repository, before[image.immutable])
        if not names_image(manifest, before[image.immutable], image.image_id, where):
            raise TagConflict(f"{where} already exists and names another image ({before[image.immutable]}, "
                              f"config {answers.config_digest(manifest, where)}); immutable tags are never "
                              "overwritten",
                              hint="rebuild with a changed lock (new tag) or delete the tag in the registry deliberately")
        held = compression.manifest_compression(manifest)
        if held != layer_compression:
            raise TagConflict(f"{where} already holds this image with {held} layers; pushing it with "
                              f"{layer_compression} layers would replace its manifest (another digest, not the "
                              "one its signatures name); immutable tags are never overwritten",
                              hint=f"push with --compression {held} (or delete the tag in the registry deliberately)")
    auth = {"username": creds[0], "password": creds[1]} if creds else None
    target = f"{host}/{image.repository}"
    if layer_compression == compression.ZSTD:
        results = _push_zstd(project, engine, client, image, target, before, existing, on_event, say)
    else:
        results = _push_daemon(engine, client, image, target, before, auth, existing is not None, on_event, say)
    digest = results[image.immutable]["digest"]
    registry_bytes = _stored_bytes(client, image.repository, digest)
    pulled = pull_check(engine, target, digest, auth, pull_check_command or PULL_CHECK_COMMAND, say,
                        image_id=image.image_id)
    facts = report.image_facts(project, engine, image.image_id)
    sbom_path = report.write_push_sbom(project, facts, image.image_id, f"{target}:{image.immutable}")
    signing = None
    if signer is not None:
        signing = _sign_pushed(project, engine, client, host, image, digest, signer, facts, host_label, say, scan)
    body = {
        "kind": "dlbase.push",
        "pushed_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "variant": image.variant,
        "image_id": image.image_id,
        "registry": host,
        "repository": image.repository,
        "tags": results,
        "immutable_tag": f"{target}:{image.immutable}",
        "moving_tag": f"{target}:{image.moving}" if image.moving else None,
        "moving": ({"tag": image.moving, "from": before[image.moving], "to": results[image.moving]["digest"]}
                   if image.moving else None),
        "repo_digests": [f"{target}@{digest}"],
        "compression": layer_compression,
        "registry_bytes": registry_bytes,
        "size_bytes": int(engine.inspect_image(image.image_id).get("Size", 0)),
        "lock_hash": facts.get("lock_hash") or image.labels.get(image_labels.LOCK_HASH),
        "base": facts.get("base"),
        "build_seconds": facts.get("build_seconds"),
        "versions": facts.get("versions"),
        "packages": facts.get("packages", {}),
        "verification": verification,
        "forced": bool(verification.get("forced")),
        "credentials": creds_from,
        "pull_check": pulled,
        "sbom_file": str(sbom_path),
        "signing": signing,
    }
    body["report_file"] = str(report.write_push(project, body))
    return body


def _action(before: str | None, digest: str, present: bool) -> str:
    if present:
        return "already present (same image)"
    return "unchanged" if before == digest else ("moved" if before else "created")


def _push_daemon(engine: Engine, client: registry.RegistryClient, image: LocalImage, target: str,
                 before: dict[str, str | None], auth: dict | None, immutable_present: bool,
                 on_event: Callable[[TransferEvent], None] | None, say: Callable[[str], None]) -> dict[str, dict]:
    """`docker push` each tag (the layers as the daemon stores them) and read it back."""
    results: dict[str, dict] = {}
    applied: list[str] = []
    try:
        for t in image.tags:
            engine.tag(image.image_id, target, t)
            applied.append(t)
        for t in image.tags:
            say(f"pushing {target}:{t}")
            pushed = engine.push(target, t, auth_config=auth, on_event=on_event)
            manifest, digest = client.manifest(image.repository, t)
            if digest != pushed.digest or not names_image(manifest, digest, image.image_id, f"{target}:{t}"):
                raise RegistryError(f"{target}:{t}: the registry serves {digest} (config "
                                    f"{answers.config_digest(manifest, f'{target}:{t}')}), the push reported "
                                    f"{pushed.digest} for image {image.image_id}",
                                    hint="another client may be pushing the same tag; push again")
            results[t] = {"tag": t, "reference": f"{target}:{t}", "digest": digest, "before": before[t],
                          "action": _action(before[t], digest, t == image.immutable and immutable_present),
                          "layers": pushed.layers, "push_seconds": pushed.seconds, "compression": compression.GZIP}
    finally:
        for t in applied:
            with contextlib.suppress(Exception):
                engine.untag(target, t)
    return results


def _push_zstd(project: Project, engine: Engine, client: registry.RegistryClient, image: LocalImage, target: str,
               before: dict[str, str | None], existing: bytes | None,
               on_event: Callable[[TransferEvent], None] | None, say: Callable[[str], None]) -> dict[str, dict]:
    """Re-compress the layers to zstd and push blobs, then the manifest under each tag.

    An immutable tag already holding this image's zstd manifest is never PUT again: its
    bytes (``existing``) are what the moving tag gets, with nothing re-compressed. No
    local tag is made (the daemon is only read)."""
    emit = on_event or (lambda _e: None)
    started = time.monotonic()
    layers: dict[str, str] = {}
    if existing is not None:
        body = existing
        say(f"{target}:{image.immutable} already holds this image's zstd manifest; nothing is re-compressed")
    else:
        work = project.state_dir / "tmp"
        work.mkdir(parents=True, exist_ok=True)
        try:
            with tempfile.TemporaryDirectory(prefix="zstd-push-", dir=work) as tmp:
                say(f"re-compressing the layers of {image.image_id[:19]} to zstd (level {compression.ZSTD_LEVEL}; "
                    "docker save, streamed)")
                converted = zstd_export.convert(engine, image.image_id, Path(tmp), emit)
                say(f"uploading {len(converted.layers)} zstd layers ({converted.stored_bytes:,} bytes with the "
                    f"config) to {target}")
                layers = zstd_push.upload_blobs(client, image.repository, converted, emit)
        except KeyboardInterrupt:
            raise Interrupted(f"push of {target} interrupted; the registry holds no new manifest for it "
                              "(at most unreferenced layer blobs)") from None
        body = converted.manifest_bytes
    digest = digests.sha256_of(body)
    media_type = json.loads(body).get("mediaType") or mediatypes.OCI_MANIFEST
    results: dict[str, dict] = {}
    for t in image.tags:
        present = t == image.immutable and existing is not None
        if not present:
            say(f"pushing {target}:{t} (zstd manifest {digest[:19]})")
            client.put_manifest(image.repository, t, body, media_type)
        _manifest, served = client.manifest(image.repository, t)
        if served != digest:
            raise RegistryError(f"{target}:{t}: the registry serves {served}, the push wrote {digest}",
                                hint="another client may be pushing the same tag; push again")
        results[t] = {"tag": t, "reference": f"{target}:{t}", "digest": digest, "before": before[t],
                      "action": _action(before[t], digest, present), "layers": layers,
                      "push_seconds": round(time.monotonic() - started, 3), "compression": compression.ZSTD}
    emit(TransferEvent("done", text=digest, digest=digest, elapsed=round(time.monotonic() - started, 3)))
    return results


def _stored_bytes(client: registry.RegistryClient, repository: str, digest: str) -> int | None:
    """Config + layer sizes of the pushed manifest: what the registry stores for the image
    (None for an index, whose platform manifests are not followed here)."""
    manifest, _d = client.manifest(repository, digest)
    if manifest.get("config") is None:
        return None
    where = f"{client.host}/{repository}@{digest}"
    return int(answers.descriptor(manifest["config"], f"{where} config").get("size", 0)) + sum(
        int(d.get("size", 0)) for d in answers.layers(manifest, where))


def _sign_pushed(project: Project, engine: Engine, client: registry.RegistryClient, host: str, image: LocalImage,
                 digest: str, signer: object, facts: dict, host_label: str | None,
                 say: Callable[[str], None], scan: object | None = None) -> dict:
    """Sign and attest the pushed digest; a failure says the image itself is published."""
    from dlbase.core.errors import DlbaseError
    from dlbase.trust import attach, evidence

    subject = evidence.Subject(host, image.repository, digest)
    try:
        return attach.for_push(project, engine, client, subject, signer, image_id=image.image_id,  # type: ignore[arg-type]
                               facts=facts, tags=tuple(image.tags), host_label=host_label,
                               scan=scan, say=say)  # type: ignore[arg-type]
    except DlbaseError as exc:
        raise exc.reworded(f"{subject.reference} was pushed, but signing/attaching failed: {exc.message}",
                           hint="run the same `dlbase push --sign` again: the push is a no-op, the signature and "
                                "attestations are written again (nothing half-written names a missing blob)") from None


def pull_check(engine: Engine, target: str, digest: str, auth: dict | None, command: list[str],
               say: Callable[[str], None], *, image_id: str | None = None) -> dict:
    """Pull ``target@digest`` and run one command in it.

    "Clean daemon state", pragmatically: the registry-qualified tags were removed before
    this runs, so nothing local names ``target`` except the digest the daemon recorded;
    the daemon fetches the manifest by digest from the registry and verifies it (a wrong
    digest or a missing manifest fails the pull). Layers the daemon already holds (this
    very image) are not downloaded again, so this proves the manifest and config, not
    every blob; the integration tests also remove the image entirely and pull it back.
    """
    ref = f"{target}@{digest}"
    say(f"pulling {ref} back and running one command in it")
    pulled_id = engine.pull(target, digest, auth_config=auth)
    # The containerd image store names a pulled image by its manifest digest (a zstd
    # manifest is another digest than the local image's), the classic store by its config.
    if image_id and pulled_id not in (image_id, digest):
        raise RegistryError(f"pulling {ref} gave image {pulled_id}, not the pushed {image_id}")
    try:
        result = _run_check(engine, ref, command)
    finally:
        # The containerd image store keeps ``target@digest`` as an image name of its own (a
        # registry-qualified name left behind; for zstd, a second copy of every blob); the
        # classic store keeps it as a RepoDigest. Either way only that name goes.
        with contextlib.suppress(Exception):
            engine.remove_image(ref)
    return {"reference": ref, "image_id": pulled_id, "command": command, "exit_code": result.exit_code,
            "output": result.output.strip()[-500:]}


def _run_check(engine: Engine, ref: str, command: list[str]) -> RunResult:
    # Through the image's entrypoint (what a user runs), without the preflight's host advice
    # (the check's own container has Docker's 64 MB /dev/shm), so the output is the command's.
    result = engine.run(ref, command, timeout=300, labels={"dlbase.purpose": "pull-check"}, network_mode="none",
                        environment={"DLBASE_SKIP_PREFLIGHT": "1"})
    if not result.ok:
        raise RegistryError(f"the image pulled back by digest does not run: exit {result.exit_code}",
                            details=result.output.splitlines()[-10:])
    return result
