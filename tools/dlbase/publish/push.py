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
   from the bytes) and that its config digest is this image ID;
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
from dataclasses import dataclass, field
from typing import Callable

from dlbase.verify import records
from dlbase.engine import credentials
from dlbase.registry import answers
from dlbase.registry import client as registry
from dlbase.examine import report
from dlbase.engine import Engine, TransferEvent
from dlbase.core import reference
from dlbase.core.errors import InvalidInput, NotVerified, RegistryError, TagConflict
from dlbase.core.imageref import repo_tags
from dlbase.examine.local_image import locate
from dlbase.core.project import Project

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
    lock_hash = labels.get("dlbase.lock-hash")
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
    variant = labels.get("dlbase.variant")
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


def publish(project: Project, engine: Engine, image: LocalImage, host: str, *, force: bool = False,
            on_event: Callable[[TransferEvent], None] | None = None, say: Callable[[str], None] = lambda _m: None,
            pull_check_command: list[str] | None = None, signer: object | None = None,
            host_label: str | None = None, scan: object | None = None) -> dict:
    """Push, read back, pull back, report. Returns the push report (also written to disk).

    With ``signer`` (a dlbase.trust.keys.KeyPair) the pushed digest is then signed and
    its SBOM, provenance and verification attached in the registry (dlbase.trust), and
    with ``scan`` (a dlbase.trust.attach.ScanInputs) its scan and VEX."""
    verification = check_publishable(project, image, force=force)
    creds, creds_from = credentials.source(host)
    client = registry.RegistryClient(host, credentials=creds)
    say(f"asking {host} what {image.repository} holds now")
    before = {t: client.tag_digest_or_none(image.repository, t) for t in image.tags}
    immutable_present = False
    if before[image.immutable]:
        manifest, _digest = client.manifest(image.repository, before[image.immutable])
        remote_config = answers.config_digest(manifest, f"{host}/{image.repository}:{image.immutable}")
        if remote_config != image.image_id:
            raise TagConflict(f"{host}/{image.repository}:{image.immutable} already exists and names another "
                              f"image ({before[image.immutable]}, config {remote_config}); immutable tags are "
                              "never overwritten",
                              hint="rebuild with a changed lock (new tag) or delete the tag in the registry deliberately")
        immutable_present = True
    auth = {"username": creds[0], "password": creds[1]} if creds else None
    target = f"{host}/{image.repository}"
    results: dict[str, dict] = {}
    applied: list[str] = []
    try:
        for t in image.tags:
            engine.tag(image.image_id, target, t)
            applied.append(t)
        for t in image.tags:
            say(f"pushing {target}:{t}")
            pushed = engine.push(target, t, auth_config=auth, on_event=on_event)
            _manifest, digest = client.manifest(image.repository, t)
            config = answers.config_digest(_manifest, f"{target}:{t}")
            if digest != pushed.digest or config != image.image_id:
                raise RegistryError(f"{target}:{t}: the registry serves {digest} (config {config}), the push "
                                    f"reported {pushed.digest} for image {image.image_id}",
                                    hint="another client may be pushing the same tag; push again")
            action = "unchanged" if before[t] == digest else ("moved" if before[t] else "created")
            if t == image.immutable and immutable_present:
                action = "already present (same image)"
            results[t] = {"tag": t, "reference": f"{target}:{t}", "digest": digest, "before": before[t],
                          "action": action, "layers": pushed.layers, "push_seconds": pushed.seconds}
    finally:
        for t in applied:
            with contextlib.suppress(Exception):
                engine.untag(target, t)
    digest = results[image.immutable]["digest"]
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
        "size_bytes": int(engine.inspect_image(image.image_id).get("Size", 0)),
        "lock_hash": facts.get("lock_hash") or image.labels.get("dlbase.lock-hash"),
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
    if image_id and pulled_id != image_id:
        raise RegistryError(f"pulling {ref} gave image {pulled_id}, not the pushed {image_id}")
    # Through the image's entrypoint (what a user runs), without the preflight's host advice
    # (the check's own container has Docker's 64 MB /dev/shm), so the output is the command's.
    result = engine.run(ref, command, timeout=300, labels={"dlbase.purpose": "pull-check"}, network_mode="none",
                        environment={"DLBASE_SKIP_PREFLIGHT": "1"})
    if not result.ok:
        raise RegistryError(f"the image pulled back by digest does not run: exit {result.exit_code}",
                            details=result.output.splitlines()[-10:])
    return {"reference": ref, "image_id": pulled_id, "command": command, "exit_code": result.exit_code,
            "output": result.output.strip()[-500:]}
