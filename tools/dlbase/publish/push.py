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
4. push the immutable tag, then the moving one, through the daemon: the image's own
   blobs as they were built (zstd or gzip, its ``dlbase.layer-compression`` label), so
   the registry's digest is the image ID (errors inside the push stream are detected by
   the engine); read each manifest back and check its digest (computed from the bytes),
   that it is this image (:func:`names_image`) and that its layers are the encoding the
   label says. Only ``--compression`` naming the *other* format converts: the layers
   are re-encoded and pushed by the registry client instead, blobs first and each tag's
   manifest last (:mod:`.layer_convert`, :mod:`.blob_upload`); an immutable tag that
   holds the image with the other compression is a ``TagConflict`` too (replacing it
   would change the digest signatures name);
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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from dlbase.verify import records
from dlbase.engine import credentials
from dlbase.registry import answers
from dlbase.registry import client as registry
from dlbase.examine import report
from dlbase.trust import contents as image_contents
from dlbase.engine import Engine, RunResult, TransferEvent
from dlbase.core import digest as digests
from dlbase.core import reference
from dlbase.core.errors import Interrupted, InvalidInput, NotVerified, RegistryError, TagConflict
from dlbase.core.imageref import repo_tags
from dlbase.image.local_image import locate
from dlbase.define.project import Project
from dlbase.core import layercompression
from dlbase.publish import blob_upload, compression, layer_convert
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


def built_compression(image: LocalImage) -> str:
    """The encoding of the image's own layers (:func:`dlbase.core.layercompression.of_labels`)."""
    return layercompression.of_labels(image.labels)


def names_image(manifest: dict, digest: str, image_id: str, where: str) -> bool:
    """A registry's manifest is of this local image: its digest is the image ID (the
    containerd image store's ID is the manifest's digest), its config digest is (the
    classic store's ID), or it is the converted form dlbase made of it (its annotation)."""
    notes = manifest.get("annotations")
    source = notes.get(compression.SOURCE_ANNOTATION) if isinstance(notes, dict) else None
    return image_id in (digest, answers.config_digest(manifest, where), source)


def publish(project: Project, engine: Engine, image: LocalImage, host: str, *, force: bool = False,
            on_event: Callable[[TransferEvent], None] | None = None, say: Callable[[str], None] = lambda _m: None,
            pull_check_command: list[str] | None = None, signer: object | None = None,
            host_label: str | None = None, scan: object | None = None,
            layer_compression: str | None = None, gzip_fallback: bool = False) -> dict:
    """Push, read back, pull back, report. Returns the push report (also written to disk).

    ``gzip_fallback`` (a zstd image): also publish its gzip form under each tag plus
    :data:`FALLBACK_SUFFIX`, for pullers that read gzip only (Docker 20.10). A tag, not
    an OCI index holding both: a client picks an index's first entry for its platform
    (Docker 26, containerd), whatever the layers' media type, so an index would give
    every puller the same one of the two; a tag is what each team can name.

    ``layer_compression``: None or the image's own encoding (:func:`built_compression`)
    pushes with the daemon (the blobs as built: registry digest = image ID); the other one
    converts them and pushes an OCI manifest with the registry client
    (:mod:`.layer_convert`, :mod:`.blob_upload`). With ``signer`` (a dlbase.trust.keys.KeyPair)
    the pushed digest is then signed and its SBOM, provenance and verification attached in
    the registry (dlbase.trust), and with ``scan`` (a dlbase.trust.attach.ScanInputs) its
    scan and VEX."""
    own = built_compression(image)
    layer_compression = layer_compression or own
    if layer_compression not in compression.CHOICES:
        raise InvalidInput(f"compression {layer_compression!r} is not one of {', '.join(compression.CHOICES)}")
    if gzip_fallback and layer_compression != compression.ZSTD:
        raise InvalidInput(f"--gzip-fallback goes with a zstd push, and this one pushes {layer_compression} layers "
                           "(every client reads gzip: there is nothing to fall back from)",
                           hint="leave --gzip-fallback out, or push a zstd image")
    verification = check_publishable(project, image, force=force)
    creds, creds_from = credentials.source(host)
    client = registry.RegistryClient(host, credentials=creds)
    say(f"asking {host} what {image.repository} holds now")
    fallback = fallback_image(image) if gzip_fallback else None
    before, existing = _held(client, host, image, layer_compression)
    fb_before, fb_existing = _held(client, host, fallback, compression.GZIP) if fallback else ({}, None)
    auth = {"username": creds[0], "password": creds[1]} if creds else None
    target = f"{host}/{image.repository}"
    if layer_compression != own:
        results = _push_converted(project, engine, client, image, target, before, existing, on_event, say,
                                  source=own, wanted=layer_compression)
    else:
        results = _push_daemon(engine, client, image, target, before, auth, existing is not None, on_event, say,
                               own=own)
    digest = results[image.immutable]["digest"]
    registry_bytes = _stored_bytes(client, image.repository, digest)
    pulled = pull_check(engine, target, digest, auth, pull_check_command or PULL_CHECK_COMMAND, say,
                        image_id=image.image_id, on_event=on_event)
    fallback_report = None
    if fallback is not None:
        fb_results = _push_converted(project, engine, client, fallback, target, fb_before, fb_existing, on_event,
                                     say, source=own, wanted=compression.GZIP)
        fb_digest = fb_results[fallback.immutable]["digest"]
        fallback_report = {"tags": fb_results, "digest": fb_digest, "compression": compression.GZIP,
                           "registry_bytes": _stored_bytes(client, image.repository, fb_digest),
                           "pull_check": pull_check(engine, target, fb_digest, auth,
                                                    pull_check_command or PULL_CHECK_COMMAND, say,
                                                    image_id=image.image_id, on_event=on_event)}
    facts = report.image_facts(project, engine, image.image_id)
    contents = image_contents.read(project, engine, image.image_id, target, say)
    sbom_path = report.write_push_sbom(project, image.image_id, contents.sbom)
    signing = None
    if signer is not None:
        signing = _sign_pushed(project, engine, client, host, image, digest, signer, facts, host_label, say, scan,
                               contents)
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
        "gzip_fallback": fallback_report,
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


#: What a gzip fallback's tags end with (``TAG-gzip`` beside ``TAG``).
FALLBACK_SUFFIX = "-gzip"


def fallback_image(image: LocalImage) -> LocalImage:
    """The same image under its fallback tags (each tag + :data:`FALLBACK_SUFFIX`)."""
    return replace(image, immutable=image.immutable + FALLBACK_SUFFIX,
                   moving=image.moving + FALLBACK_SUFFIX if image.moving else None)


def _held(client: registry.RegistryClient, host: str, image: LocalImage, wanted: str
          ) -> tuple[dict[str, str | None], bytes | None]:
    """What each of the image's tags points at now, and the immutable tag's manifest bytes
    when it already holds this image as ``wanted``. An immutable tag naming another image,
    or this one with the other compression, is a TagConflict: nothing is pushed."""
    before = {t: client.tag_digest_or_none(image.repository, t) for t in image.tags}
    if not before[image.immutable]:
        return before, None
    where = f"{host}/{image.repository}:{image.immutable}"
    manifest, existing, _digest = client.manifest_with_bytes(image.repository, before[image.immutable])
    if not names_image(manifest, before[image.immutable], image.image_id, where):
        raise TagConflict(f"{where} already exists and names another image ({before[image.immutable]}, "
                          f"config {answers.config_digest(manifest, where)}); immutable tags are never "
                          "overwritten",
                          hint="rebuild with a changed lock (new tag) or delete the tag in the registry deliberately")
    held = compression.manifest_compression(manifest)
    if held != wanted:
        raise TagConflict(f"{where} already holds this image with {held} layers; pushing it with "
                          f"{wanted} layers would replace its manifest (another digest, not the "
                          "one its signatures name); immutable tags are never overwritten",
                          hint=f"push with --compression {held} (or delete the tag in the registry deliberately)")
    return before, existing


def _action(before: str | None, digest: str, present: bool) -> str:
    if present:
        return "already present (same image)"
    return "unchanged" if before == digest else ("moved" if before else "created")


def _push_daemon(engine: Engine, client: registry.RegistryClient, image: LocalImage, target: str,
                 before: dict[str, str | None], auth: dict | None, immutable_present: bool,
                 on_event: Callable[[TransferEvent], None] | None, say: Callable[[str], None], *,
                 own: str) -> dict[str, dict]:
    """`docker push` each tag (the layers as the daemon stores them: ``own``) and read it back."""
    results: dict[str, dict] = {}
    applied: list[str] = []
    try:
        for t in image.tags:
            engine.tag(image.image_id, target, t)
            applied.append(t)
        for t in image.tags:
            say(f"pushing {target}:{t} ({own} layers as built, nothing re-compressed)")
            pushed = engine.push(target, t, auth_config=auth, on_event=on_event)
            manifest, digest = client.manifest(image.repository, t)
            if digest != pushed.digest or not names_image(manifest, digest, image.image_id, f"{target}:{t}"):
                raise RegistryError(f"{target}:{t}: the registry serves {digest} (config "
                                    f"{answers.config_digest(manifest, f'{target}:{t}')}), the push reported "
                                    f"{pushed.digest} for image {image.image_id}",
                                    hint="another client may be pushing the same tag; push again")
            served = compression.manifest_compression(manifest)
            if served != own:
                raise RegistryError(f"{target}:{t}: the registry holds {served} layers, the image's "
                                    f"{layercompression.LABEL} label says {own}",
                                    hint="the label is not what was built (an image relabelled by hand?); rebuild it")
            results[t] = {"tag": t, "reference": f"{target}:{t}", "digest": digest, "before": before[t],
                          "action": _action(before[t], digest, t == image.immutable and immutable_present),
                          "layers": pushed.layers, "push_seconds": pushed.seconds, "compression": own}
    finally:
        for t in applied:
            with contextlib.suppress(Exception):
                engine.untag(target, t)
    return results


def _push_converted(project: Project, engine: Engine, client: registry.RegistryClient, image: LocalImage,
                    target: str, before: dict[str, str | None], existing: bytes | None,
                    on_event: Callable[[TransferEvent], None] | None, say: Callable[[str], None], *,
                    source: str, wanted: str) -> dict[str, dict]:
    """Re-encode the ``source`` layers as ``wanted`` and push blobs, then the manifest
    under each tag.

    An immutable tag already holding this image's converted manifest is never PUT again:
    its bytes (``existing``) are what the moving tag gets, with nothing re-encoded. No
    local tag is made (the daemon is only read)."""
    emit = on_event or (lambda _e: None)
    started = time.monotonic()
    layers: dict[str, str] = {}
    if existing is not None:
        body = existing
        say(f"{target}:{image.immutable} already holds this image's {wanted} manifest; nothing is re-encoded")
    else:
        work = project.state_dir / "tmp"
        work.mkdir(parents=True, exist_ok=True)
        try:
            with tempfile.TemporaryDirectory(prefix="convert-push-", dir=work) as tmp:
                level = compression.ZSTD_LEVEL if wanted == compression.ZSTD else compression.GZIP_LEVEL
                say(f"converting the {source} layers of {image.image_id[:19]} to {wanted} (level {level}, every "
                    "core; docker save, streamed): asked for with --compression, the image itself is " + source)
                converted = layer_convert.convert(engine, image.image_id, Path(tmp), wanted, emit)
                say(f"uploading {len(converted.layers)} {wanted} layers ({converted.stored_bytes:,} bytes with the "
                    f"config) to {target}")
                layers = blob_upload.upload_blobs(client, image.repository, converted, emit)
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
            say(f"pushing {target}:{t} ({wanted} manifest {digest[:19]})")
            client.put_manifest(image.repository, t, body, media_type)
        _manifest, served = client.manifest(image.repository, t)
        if served != digest:
            raise RegistryError(f"{target}:{t}: the registry serves {served}, the push wrote {digest}",
                                hint="another client may be pushing the same tag; push again")
        results[t] = {"tag": t, "reference": f"{target}:{t}", "digest": digest, "before": before[t],
                      "action": _action(before[t], digest, present), "layers": layers,
                      "push_seconds": round(time.monotonic() - started, 3), "compression": wanted}
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
                 say: Callable[[str], None], scan: object | None = None,
                 contents: image_contents.ImageContents | None = None) -> dict:
    """Sign and attest the pushed digest; a failure says the image itself is published."""
    from dlbase.core.errors import DlbaseError
    from dlbase.trust import attach, evidence

    subject = evidence.Subject(host, image.repository, digest)
    try:
        return attach.for_push(project, engine, client, subject, signer, image_id=image.image_id,  # type: ignore[arg-type]
                               facts=facts, tags=tuple(image.tags), host_label=host_label,
                               scan=scan, contents=contents, say=say)  # type: ignore[arg-type]
    except DlbaseError as exc:
        raise exc.reworded(f"{subject.reference} was pushed, but signing/attaching failed: {exc.message}",
                           hint="run the same `dlbase push --sign` again: the push is a no-op, the signature and "
                                "attestations are written again (nothing half-written names a missing blob)") from None


def pull_check(engine: Engine, target: str, digest: str, auth: dict | None, command: list[str],
               say: Callable[[str], None], *, image_id: str | None = None,
               on_event: Callable[[TransferEvent], None] | None = None) -> dict:
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
    pulled_id = engine.pull(target, digest, auth_config=auth, on_event=on_event)
    # The containerd image store names a pulled image by its manifest digest (a converted
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
