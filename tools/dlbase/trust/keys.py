"""The signing key pair, in the files cosign writes and reads.

``cosign.key`` is an ECDSA P-256 private key (PKCS#8 DER) encrypted the way cosign (through
go-securesystemslib's ``encrypted`` package) encrypts it: a key derived from the passphrase
with scrypt (N=32768, r=8, p=1, 32-byte salt) seals the DER with NaCl secretbox (24-byte
nonce); the JSON ``{kdf: {name, params: {N, r, p}, salt}, cipher: {name, nonce},
ciphertext}`` (byte fields in standard base64) is wrapped in a PEM block typed
``ENCRYPTED SIGSTORE PRIVATE KEY`` (older cosign: ``ENCRYPTED COSIGN PRIVATE KEY``, also
read). ``cosign.pub`` is the PEM ``PUBLIC KEY`` (SubjectPublicKeyInfo).

Every primitive comes from ``cryptography`` (EC keys, ECDSA, scrypt) and PyNaCl
(secretbox); this module only arranges bytes. A key can also be handed over as PEM text
in an environment variable (``env://NAME``, cosign's own spelling) for CI secrets.

Secrets leave the environment once read: the private key's variable (``env://NAME``) and
the passphrase's (``DLBASE_SIGNING_PASSWORD``) are removed from ``os.environ``, so no
child dlbase starts afterwards (the testinfra and pytest runs of ``verify --attest``,
``docker`` clients) inherits them.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.secret
import nacl.utils
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, utils
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from dlbase.core import fileerrors
from dlbase.core import documents
from dlbase.core.errors import FileProblem, InvalidInput, Missing
from dlbase.core.fsutil import NoHardLinks, TargetExists, write_bytes_atomic
from dlbase.core.signing_env import KEY_ENV, PASSWORD_ENV, SECRET_ENV

PEM_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY"
PEM_TYPES_READ = (PEM_TYPE, "ENCRYPTED COSIGN PRIVATE KEY")
KDF_NAME = "scrypt"
CIPHER_NAME = "nacl/secretbox"
# cosign's default ("legacy") parameters; the two stronger sets go-securesystemslib knows
# are read too, anything else is refused (as go-securesystemslib refuses it).
SCRYPT_DEFAULT = {"N": 32768, "r": 8, "p": 1}
SCRYPT_ACCEPTED = ({"N": 32768, "r": 8, "p": 1}, {"N": 65536, "r": 8, "p": 1}, {"N": 131072, "r": 8, "p": 1})
SALT_BYTES = 32
PRIVATE_FILE = "cosign.key"
PUBLIC_FILE = "cosign.pub"
ENV_PREFIX = "env://"


@dataclass(frozen=True)
class KeyPair:
    private: ec.EllipticCurvePrivateKey

    @property
    def public(self) -> ec.EllipticCurvePublicKey:
        return self.private.public_key()


def generate() -> KeyPair:
    """A fresh ECDSA P-256 key (the curve cosign generates)."""
    return KeyPair(ec.generate_private_key(ec.SECP256R1()))


def _scrypt_key(passphrase: bytes, salt: bytes, params: dict) -> bytes:
    return Scrypt(salt=salt, length=nacl.secret.SecretBox.KEY_SIZE, n=params["N"], r=params["r"],
                  p=params["p"]).derive(passphrase)


def _pem(kind: str, der: bytes) -> bytes:
    body = base64.b64encode(der).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return (f"-----BEGIN {kind}-----\n" + "\n".join(lines) + f"\n-----END {kind}-----\n").encode()


def _unpem(data: bytes, where: str) -> tuple[str, bytes]:
    text = data.decode("ascii", errors="replace").strip()
    first = text.splitlines()[0] if text else ""
    if not (first.startswith("-----BEGIN ") and first.endswith("-----")):
        raise InvalidInput(f"{where} is not a PEM file", hint="give the cosign.key written by `dlbase key generate`")
    kind = first[len("-----BEGIN "):-5]
    end = f"-----END {kind}-----"
    if end not in text:
        raise InvalidInput(f"{where}: PEM block {kind!r} has no END line")
    body = text.split(first, 1)[1].split(end, 1)[0]
    try:
        return kind, base64.b64decode("".join(body.split()), validate=True)
    except ValueError:
        raise InvalidInput(f"{where}: PEM block {kind!r} is not valid base64") from None


def encrypt_private_key(pair: KeyPair, passphrase: bytes, *, params: dict | None = None,
                        salt: bytes | None = None, nonce: bytes | None = None) -> bytes:
    """The PEM text of ``cosign.key`` for this key and passphrase."""
    params = dict(params or SCRYPT_DEFAULT)
    salt = salt if salt is not None else nacl.utils.random(SALT_BYTES)
    nonce = nonce if nonce is not None else nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
    der = pair.private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    sealed = nacl.secret.SecretBox(_scrypt_key(passphrase, salt, params)).encrypt(der, nonce)
    envelope = {
        "kdf": {"name": KDF_NAME, "params": params, "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": CIPHER_NAME, "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(sealed.ciphertext).decode(),
    }
    return _pem(PEM_TYPE, json.dumps(envelope, separators=(",", ":")).encode())


def decrypt_envelope(envelope: dict, passphrase: bytes, where: str = "the key") -> bytes:
    """The plaintext sealed in a go-securesystemslib ``encrypted`` JSON envelope."""
    try:
        kdf, cipher = envelope["kdf"], envelope["cipher"]
        params = {k: int(kdf["params"][k]) for k in ("N", "r", "p")}
        salt = base64.b64decode(kdf["salt"])
        nonce = base64.b64decode(cipher["nonce"])
        ciphertext = base64.b64decode(envelope["ciphertext"])
    except (KeyError, TypeError, ValueError):
        raise InvalidInput(f"{where}: not an encrypted sigstore key (kdf/cipher/ciphertext fields missing)") from None
    if kdf.get("name") != KDF_NAME or cipher.get("name") != CIPHER_NAME:
        raise InvalidInput(f"{where}: unsupported encryption {kdf.get('name')}/{cipher.get('name')} "
                           f"(expected {KDF_NAME}/{CIPHER_NAME})")
    if params not in SCRYPT_ACCEPTED:
        raise InvalidInput(f"{where}: unsupported scrypt parameters {params}")
    try:
        return nacl.secret.SecretBox(_scrypt_key(passphrase, salt, params)).decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError:
        raise InvalidInput(f"{where}: wrong passphrase (or a damaged key file)",
                           hint=f"set {PASSWORD_ENV} to the passphrase the key was generated with") from None


def decrypt_private_key(pem: bytes, passphrase: bytes, where: str = "the key") -> KeyPair:
    kind, raw = _unpem(pem, where)
    if kind not in PEM_TYPES_READ:
        raise InvalidInput(f"{where} is a {kind!r} PEM block, not an encrypted sigstore private key",
                           hint="give the private key (cosign.key), not the public one")
    envelope = documents.parse_json(raw, "key", documents.Source(
        f"{where} (the PEM body)", hint="give the private key written by `dlbase key generate` or cosign"))
    der = decrypt_envelope(documents.expect_object(envelope, documents.Source(where), "the PEM body"), passphrase, where)
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError):
        raise InvalidInput(f"{where}: the passphrase opens it, but what it holds is not a private key (PKCS#8 DER)",
                           hint="the file was not written by `dlbase key generate` or `cosign generate-key-pair`; "
                                "use the key pair that made the public key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidInput(f"{where} holds {_kind_of_key(key)}, not an ECDSA P-256 key",
                           hint="dlbase signs with ECDSA P-256 keys, as cosign does: make one with "
                                "`dlbase key generate`")
    return KeyPair(key)


def _kind_of_key(key: object) -> str:
    """A key's algorithm in words ("an RSA key"), never its Python class name."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return f"an ECDSA key on curve {key.curve.name}"
    words = {(rsa.RSAPrivateKey, rsa.RSAPublicKey): "an RSA key",
             (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey): "an Ed25519 key",
             (ed448.Ed448PrivateKey, ed448.Ed448PublicKey): "an Ed448 key"}
    return next((w for classes, w in words.items() if isinstance(key, classes)), "a key of another algorithm")


def public_pem(pair: KeyPair) -> bytes:
    return pair.public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


#: The file `dlbase key generate` writes for each kind of key read here.
_KEY_FILE = {"private key": PRIVATE_FILE, "public key": PUBLIC_FILE}


def read_source(source: str, what: str, *, secret: bool = False) -> tuple[bytes, str]:
    """Bytes of a key given as a path or as ``env://NAME`` (PEM text in that variable).

    Each way a source can be wrong is told apart, because "does not exist" for a folder
    that plainly exists, or "$," for a variable that was never named, leaves the user
    guessing what dlbase wanted. With ``secret`` (a private key) the variable is removed
    from the environment once read."""
    expected = _KEY_FILE.get(what, "the key file")
    if source.startswith(ENV_PREFIX):
        name = source[len(ENV_PREFIX):]
        if not name:
            raise InvalidInput(f"the {what} '{source}' names no environment variable",
                               hint=f"write env://NAME, e.g. env://{KEY_ENV}, with the PEM text of the "
                                    f"{what} in $NAME")
        value = os.environ.pop(name, None) if secret else os.environ.get(name)
        if not value:
            raise Missing(f"the {what} should be in ${name}, which is not set or empty",
                          hint=f"put the PEM text of the {what} into {name} (a CI secret)")
        return value.encode(), f"${name}"
    if not source:
        raise InvalidInput(f"the {what} path is empty", hint=f"give the path of {expected}")
    path = Path(source)
    if path.is_dir():
        inside = path / expected
        raise InvalidInput(f"{what} {source} is a folder; the {what} is a file ({expected})",
                           hint=(f"give the file itself: {inside}" if inside.is_file()
                                 else f"give the path of {expected}, written by `dlbase key generate`"))
    if not fileerrors.is_file(path, source, what=what):
        raise Missing(f"{what} {source} does not exist", hint="make one with `dlbase key generate`")
    cap = documents.LIMITS["key"].max_bytes
    try:
        with open(path, "rb") as handle:
            data = handle.read(cap + 1)
    except OSError as exc:
        raise FileProblem(f"{what} {source} cannot be read: {exc.strerror}",
                          hint="check the file's permissions (its owner must be able to read it)") from None
    if len(data) > cap:
        raise InvalidInput(f"{what} {source} is over {cap:,} bytes; a key file is about 1 kB",
                           hint=f"give the path of {expected}, written by `dlbase key generate`")
    return data, str(path)


def exposure(source: str) -> str | None:
    """Why a private key file is exposed (readable or writable by other users), or None.

    A warning, not a refusal (the key is still encrypted): ssh refuses such keys; cosign
    does not check at all.
    """
    if source.startswith(ENV_PREFIX):
        return None
    try:
        mode = os.stat(source).st_mode
    except OSError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return (f"private key {source} is accessible to other users (mode {stat.S_IMODE(mode):04o}); "
                f"restrict it: chmod 600 {source}")
    return None


def load_private(source: str, passphrase: bytes) -> KeyPair:
    data, where = read_source(source, "private key", secret=True)
    return decrypt_private_key(data, passphrase, where)


def load_public(source: str) -> ec.EllipticCurvePublicKey:
    data, where = read_source(source, "public key")
    return public_from_pem(data, where)


def public_from_pem(data: bytes, where: str) -> ec.EllipticCurvePublicKey:
    """A cosign.pub's key from its PEM bytes (a file, a variable, or inline in a policy)."""
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise InvalidInput(f"{where} is not a PEM public key",
                           hint="give cosign.pub (the file next to cosign.key)") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidInput(f"{where} holds {_kind_of_key(key)}, not an ECDSA P-256 public key",
                           hint="give cosign.pub (the file next to cosign.key)")
    return key


def sign(pair: KeyPair, data: bytes) -> bytes:
    """ECDSA P-256 / SHA-256 signature (DER), what cosign puts (base64) in its layers."""
    return pair.private.sign(data, ec.ECDSA(hashes.SHA256()))


def verify(public: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


def verify_prehashed(public: ec.EllipticCurvePublicKey, signature: bytes, sha256_digest: bytes) -> bool:
    """Whether ``signature`` is the key's ECDSA signature of data whose SHA-256 is
    ``sha256_digest``: how a Sigstore bundle's message signature is checked when only the
    artifact's digest (an image's manifest digest) is known."""
    try:
        public.verify(signature, sha256_digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        return True
    except (InvalidSignature, ValueError):
        return False


def fingerprint(public: ec.EllipticCurvePublicKey) -> str:
    """sha256 of the public key's DER: a short name for "which key" in tables and reports."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    return "sha256:" + digest.finalize().hex()


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` atomically with exactly ``mode``, never replacing an existing file."""
    try:
        write_bytes_atomic(path, data, mode=mode, overwrite=False)
    except NoHardLinks as exc:
        raise FileProblem(f"cannot write {path}: its filesystem does not support hard links "
                          f"({exc.strerror}), which dlbase needs to create a key without ever "
                          "overwriting one", hint="choose an --out folder on a local Linux filesystem "
                                                  "(ext4, xfs, btrfs, tmpfs), then move the files") from None
    except TargetExists:
        raise InvalidInput(f"{path} already exists; keys are never overwritten",
                           hint="move the old key away deliberately (see docs/trust-operators.md on rotation)") from None


def write_pair(pair: KeyPair, passphrase: bytes, out_dir: Path) -> tuple[Path, Path]:
    """cosign.key (0600) and cosign.pub in out_dir; refuses if either exists already."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileProblem(f"cannot make the key folder {out_dir}: {exc.strerror}",
                          hint="choose an --out folder you can write to") from None
    private, public = out_dir / PRIVATE_FILE, out_dir / PUBLIC_FILE
    for path in (private, public):
        if path.exists():
            raise InvalidInput(f"{path} already exists; keys are never overwritten",
                               hint="choose another --out or move the old pair away deliberately")
    _write_new(private, encrypt_private_key(pair, passphrase), 0o600)
    try:
        _write_new(public, public_pem(pair), 0o644)
    except BaseException:
        private.unlink(missing_ok=True)
        raise
    return private, public


__all__ = ["KeyPair", "generate", "encrypt_private_key", "decrypt_private_key", "public_pem", "load_private",
           "load_public", "public_from_pem", "sign", "verify", "fingerprint", "write_pair", "exposure",
           "SECRET_ENV"]
