"""Typed errors that carry what the user must be told and the exit code the CLI uses.

Only the CLI prints and exits. Every other module raises one of these, so a library
caller (tests, another tool) gets a value it can inspect instead of a process exit, and
every failure of the same kind maps to the same, documented exit code.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes. Distinct per failure kind so scripts can branch on them."""

    OK = 0
    FAILED = 1  # a check or test ran and found a problem (generic)
    INVALID_INPUT = 2  # malformed matrix/compat data, incompatible versions, bad arguments
    DRIFT = 3  # committed generated files (Dockerfiles, README table, locks) are stale
    LINT = 4  # hadolint findings at warning level or above
    UNREACHABLE = 5  # a wheel index or registry needed for this step cannot be reached
    DAEMON = 6  # the Docker daemon is not running or not reachable
    BUILD = 7  # docker build failed
    MISMATCH = 8  # the built image does not contain what the variant says
    VERIFY = 9  # verification of an image failed
    NOT_VERIFIED = 10  # publishing refused: image never passed verify
    REGISTRY = 11  # registry refused (auth, protocol, push stream error)
    TAG_CONFLICT = 12  # an immutable tag already points at a different digest
    NOT_REPRODUCIBLE = 13  # two from-scratch builds differ
    MISSING = 14  # a required local resource is missing (base image, tool, file)
    HASH_MISMATCH = 15  # a wheel's sha256 is not one the lock pins (tampered or corrupt file)
    UNSIGNED = 16  # trust: the image has no signature in the registry
    BAD_SIGNATURE = 17  # trust: a signature or attestation does not verify with the key given
    WRONG_SUBJECT = 18  # trust: a signed statement names another digest than the image's
    POLICY = 19  # trust: no verification attestation meets the policy (--require-gpu-verified...)
    WRONG_IDENTITY = 20  # trust: the signature was made for another repository, or names other tags
    INTERRUPTED = 130  # Ctrl-C; matches the shell's 128 + SIGINT


#: What each code means, in the words docs/reference.md, docs/failures.md and `dlbase --help` use.
#: The one source for those texts: `dlbase render` writes them into docs/reference.md and
#: docs/failures.md, and a unit test fails when a code has no text here.
EXIT_TEXT: dict[ExitCode, str] = {
    ExitCode.OK: "ok",
    ExitCode.FAILED: "a check failed",
    ExitCode.INVALID_INPUT: "invalid input or incompatible versions",
    ExitCode.DRIFT: "stale or damaged generated files",
    ExitCode.LINT: "lint findings",
    ExitCode.UNREACHABLE: "index/registry unreachable",
    ExitCode.DAEMON: "Docker daemon unreachable",
    ExitCode.BUILD: "build failed",
    ExitCode.MISMATCH: "image contents disagree with the variant",
    ExitCode.VERIFY: "verify failed",
    ExitCode.NOT_VERIFIED: "image not verified",
    ExitCode.REGISTRY: "registry error",
    ExitCode.TAG_CONFLICT: "immutable tag conflict",
    ExitCode.NOT_REPRODUCIBLE: "not reproducible",
    ExitCode.MISSING: "missing local resource",
    ExitCode.HASH_MISMATCH: "wheel hash mismatch",
    ExitCode.UNSIGNED: "unsigned",
    ExitCode.BAD_SIGNATURE: "bad signature",
    ExitCode.WRONG_SUBJECT: "statement about another digest",
    ExitCode.POLICY: "trust policy not met",
    ExitCode.WRONG_IDENTITY: "signed for another repository or tag",
    ExitCode.INTERRUPTED: "interrupted",
}


def exit_code_sentence() -> str:
    """'0 ok, 1 a check failed, ..., 130 interrupted': every code, in order, one line."""
    return ", ".join(f"{int(code)} {EXIT_TEXT[code]}" for code in ExitCode)


class DlbaseError(Exception):
    """Base error: a message for the user, an optional hint saying what to do, an exit code."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None, details: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details or []

    def reworded(self, message: str, *, hint: str | None = None) -> DlbaseError:
        """The same error (type, exit code, details, fields) with a new message and hint,
        for a caller that adds what it was doing when it failed.

        Built without calling ``__init__``: subclasses take other arguments (a file and a
        line, a log tail), so ``type(exc)(message, details=...)`` is not a safe copy."""
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        Exception.__init__(new, message)
        new.message = message
        new.hint = hint if hint is not None else self.hint
        new.details = list(self.details)
        return new

    def to_dict(self) -> dict:
        return {
            "error": type(self).__name__,
            "message": self.message,
            "hint": self.hint,
            "details": self.details,
            "exit_code": int(self.exit_code),
        }


class InvalidInput(DlbaseError):
    exit_code = ExitCode.INVALID_INPUT


class MatrixError(InvalidInput):
    """A matrix or compat file is malformed. The message names file, variant and field."""

    def __init__(self, file: str, message: str, *, variant: str | None = None,
                 field: str | None = None, lineno: int | None = None, hint: str | None = None):
        where = file if lineno is None else f"{file}:{lineno}"
        parts = [where]
        if variant:
            parts.append(f"variant '{variant}'")
        if field:
            parts.append(f"field '{field}'")
        super().__init__(f"{', '.join(parts)}: {message}", hint=hint)
        self.file, self.variant, self.field, self.lineno = file, variant, field, lineno


class FileProblem(InvalidInput):
    """A file dlbase must read or write is not usable: missing, a folder, unreadable,
    not UTF-8, or on a read-only/immutable path. Names the file and the reason."""


class AddressError(InvalidInput):
    """A malformed address: registry HOST[:PORT], DOCKER_HOST, an index URL, a repository."""


class Incompatible(InvalidInput):
    """A version combination that cannot work (wrong torchvision, missing CUDA line...)."""


class Drift(DlbaseError):
    exit_code = ExitCode.DRIFT


class LintFailed(DlbaseError):
    exit_code = ExitCode.LINT


class Unreachable(DlbaseError):
    exit_code = ExitCode.UNREACHABLE


class DaemonUnavailable(DlbaseError):
    exit_code = ExitCode.DAEMON


class BuildFailed(DlbaseError):
    exit_code = ExitCode.BUILD

    def __init__(self, message: str, *, step: str | None = None, log_tail: list[str] | None = None,
                 log_file: str | None = None, hint: str | None = None):
        details = []
        if step:
            details.append(f"failing step: {step}")
        if log_tail:
            details.append("last lines of the build log:")
            details.extend("  " + line for line in log_tail)
        if log_file:
            details.append(f"full log: {log_file}")
        super().__init__(message, hint=hint, details=details)
        self.step, self.log_tail, self.log_file = step, log_tail or [], log_file


class ImageMismatch(DlbaseError):
    exit_code = ExitCode.MISMATCH


class VerifyFailed(DlbaseError):
    exit_code = ExitCode.VERIFY


class NotVerified(DlbaseError):
    exit_code = ExitCode.NOT_VERIFIED


class RegistryError(DlbaseError):
    exit_code = ExitCode.REGISTRY


class BadAnswer(RegistryError):
    """A server (registry, index, database mirror) answered what must not be accepted:
    a redirect from https to plain http, a body past its cap, too many redirects. Names the URL."""


class TagConflict(DlbaseError):
    exit_code = ExitCode.TAG_CONFLICT


class NotReproducible(DlbaseError):
    exit_code = ExitCode.NOT_REPRODUCIBLE


class Missing(DlbaseError):
    exit_code = ExitCode.MISSING


class HashMismatch(DlbaseError):
    """A downloaded or cached wheel does not match any hash the lock pins.

    Its own exit code because it is an integrity failure, not a build or network one:
    CI should alarm on it rather than retry.
    """

    exit_code = ExitCode.HASH_MISMATCH


class Interrupted(DlbaseError):
    exit_code = ExitCode.INTERRUPTED


class Unsigned(DlbaseError):
    """The registry holds no signature for the image's digest (`dlbase trust`/`pull`)."""

    exit_code = ExitCode.UNSIGNED


class BadSignature(DlbaseError):
    """A signature or attestation does not verify with the given key (tampered, other key)."""

    exit_code = ExitCode.BAD_SIGNATURE


class WrongSubject(DlbaseError):
    """A correctly signed statement names another digest than the image being checked."""

    exit_code = ExitCode.WRONG_SUBJECT


class PolicyNotMet(DlbaseError):
    """Signed evidence exists but no verification meets the consumer's policy."""

    exit_code = ExitCode.POLICY


class WrongIdentity(DlbaseError):
    """A valid publisher signature of this digest, made for another repository (the image,
    its .sig and .att copied elsewhere) or for other tags than the one asked for (a registry
    serving an older signed digest under a moving tag)."""

    exit_code = ExitCode.WRONG_IDENTITY
