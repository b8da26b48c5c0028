"""Keys in cosign's encrypted sigstore PEM format: round trips, known answers, refusals."""

from __future__ import annotations

import base64
import errno
import json
import os
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from dlbase.core.errors import FileProblem, InvalidInput, Missing
from dlbase.core import fsutil
from dlbase.trust import keys

# Vectors published with go-securesystemslib's `encrypted` package (which cosign uses):
# passphrase "supersecret" seals "reallyimportant". Decrypting them proves the KDF,
# cipher and field layout are the ones cosign reads, not merely self-consistent.
GO_VECTORS = [
    {"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1},
             "salt": "N9a7x5JFGbrtB2uBR81jPwp0eiLR4A7FV3mjVAQrg1g="},
     "cipher": {"name": "nacl/secretbox", "nonce": "2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik"},
     "ciphertext": "SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ=="},
    {"kdf": {"name": "scrypt", "params": {"N": 65536, "r": 8, "p": 1},
             "salt": "FhzPOt9/bJG4PTq6lQ6ecG6GzaOuOy/ynG5+yRiFlNs="},
     "cipher": {"name": "nacl/secretbox", "nonce": "aw1ng1jHaDz/tQ7V2gR9O2+IGQ8xJEuE"},
     "ciphertext": "HycvuLZL4sYH0BrYTh4E/H20VtAW6u5zL5Pr+IBjYLYnCPzDkq8="},
]


def test_decrypts_go_securesystemslib_vectors():
    assert keys.decrypt_envelope(GO_VECTORS[0], b"supersecret") == b"reallyimportant"
    # the second vector is from go's Marshal(): the plaintext is the JSON of the bytes
    sealed = keys.decrypt_envelope(GO_VECTORS[1], b"supersecret")
    assert base64.b64decode(json.loads(sealed)) == b"reallyimportant"


def test_wrong_passphrase_on_vector_is_a_clear_error():
    with pytest.raises(InvalidInput, match="wrong passphrase"):
        keys.decrypt_envelope(GO_VECTORS[0], b"not it")


def test_unsupported_scrypt_parameters_are_refused():
    bad = json.loads(json.dumps(GO_VECTORS[0]))
    bad["kdf"]["params"] = {"N": 99, "r": 99, "p": 99}
    with pytest.raises(InvalidInput, match="unsupported scrypt parameters"):
        keys.decrypt_envelope(bad, b"supersecret")


def test_private_key_pem_layout_and_roundtrip():
    pair = keys.generate()
    pem = keys.encrypt_private_key(pair, b"pw")
    text = pem.decode()
    assert text.startswith("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    assert text.rstrip().endswith("-----END ENCRYPTED SIGSTORE PRIVATE KEY-----")
    body = json.loads(base64.b64decode("".join(text.splitlines()[1:-1])))
    assert body["kdf"]["name"] == "scrypt" and body["kdf"]["params"] == {"N": 32768, "r": 8, "p": 1}
    assert len(base64.b64decode(body["kdf"]["salt"])) == 32
    assert body["cipher"]["name"] == "nacl/secretbox" and len(base64.b64decode(body["cipher"]["nonce"])) == 24
    # the plaintext is the PKCS#8 DER of a P-256 key
    der = keys.decrypt_envelope(body, b"pw")
    loaded = serialization.load_der_private_key(der, password=None)
    assert isinstance(loaded.curve, ec.SECP256R1)
    again = keys.decrypt_private_key(pem, b"pw")
    assert keys.public_pem(again) == keys.public_pem(pair)


def test_old_cosign_pem_type_is_read():
    pair = keys.generate()
    pem = keys.encrypt_private_key(pair, b"pw").replace(b"SIGSTORE", b"COSIGN")
    assert keys.public_pem(keys.decrypt_private_key(pem, b"pw")) == keys.public_pem(pair)


def test_public_key_given_as_private_is_refused(tmp_path):
    pair = keys.generate()
    (tmp_path / "k.pub").write_bytes(keys.public_pem(pair))
    with pytest.raises(InvalidInput, match="not an encrypted sigstore private key"):
        keys.load_private(str(tmp_path / "k.pub"), b"pw")


def test_write_pair_modes_and_refuses_overwrite(tmp_path):
    pair = keys.generate()
    priv, pub = keys.write_pair(pair, b"pw", tmp_path / "k")
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert pub.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    before = priv.read_bytes()
    with pytest.raises(InvalidInput, match="already exists"):
        keys.write_pair(keys.generate(), b"pw", tmp_path / "k")
    assert priv.read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["cosign.key", "cosign.pub"]


def test_key_from_environment_leaves_the_environment_once_read(monkeypatch):
    pair = keys.generate()
    monkeypatch.setenv("TEST_KEY_PEM", keys.encrypt_private_key(pair, b"pw").decode())
    assert keys.public_pem(keys.load_private("env://TEST_KEY_PEM", b"pw")) == keys.public_pem(pair)
    assert "TEST_KEY_PEM" not in os.environ  # no child started later inherits the key
    with pytest.raises(Missing, match=r"\$TEST_KEY_PEM"):
        keys.load_private("env://TEST_KEY_PEM", b"pw")
    monkeypatch.setenv("TEST_PUB_PEM", keys.public_pem(pair).decode())
    keys.load_public("env://TEST_PUB_PEM")
    assert "TEST_PUB_PEM" in os.environ  # a public key is no secret


def test_passphrase_and_key_are_gone_before_verify_starts_its_children(monkeypatch, tmp_path):
    """What `verify --attest` does first (load the key), then the host half's environment."""
    from dlbase.cli.commands import _signing
    from dlbase.verify import children

    pair = keys.generate()
    monkeypatch.setenv(keys.KEY_ENV, keys.encrypt_private_key(pair, b"pw").decode())
    monkeypatch.setenv(keys.PASSWORD_ENV, "pw")
    assert keys.public_pem(_signing.private_key(f"env://{keys.KEY_ENV}")) == keys.public_pem(pair)
    assert keys.KEY_ENV not in os.environ and keys.PASSWORD_ENV not in os.environ
    monkeypatch.setenv(keys.PASSWORD_ENV, "set again by someone")  # and even then
    assert not set(keys.SECRET_ENV) & set(children.child_env())


def test_a_key_file_others_can_read_gets_a_warning(tmp_path):
    private, _public = keys.write_pair(keys.generate(), b"pw", tmp_path / "k")
    assert keys.exposure(str(private)) is None  # 0600 as written
    private.chmod(0o644)
    warning = keys.exposure(str(private))
    assert warning and "mode 0644" in warning and "chmod 600" in warning
    assert keys.exposure("env://ANY") is None


def test_a_filesystem_without_hard_links_is_a_clear_error(tmp_path, monkeypatch):
    def no_links(_src, _dst):
        raise OSError(errno.EPERM, "Operation not permitted")  # what vfat answers link(2)

    monkeypatch.setattr(fsutil, "_link", no_links)
    with pytest.raises(FileProblem, match="does not support hard links"):
        keys.write_pair(keys.generate(), b"pw", tmp_path / "k")
    assert list((tmp_path / "k").iterdir()) == []  # no key, no temporary file left


def test_an_envelope_that_opens_to_something_not_a_key_is_invalid_input():
    pem = keys.encrypt_private_key(keys.generate(), b"pw")
    kind, raw = keys._unpem(pem, "k")
    envelope = json.loads(raw)
    salt = base64.b64decode(envelope["kdf"]["salt"])
    nonce = base64.b64decode(envelope["cipher"]["nonce"])
    import nacl.secret

    box = nacl.secret.SecretBox(keys._scrypt_key(b"pw", salt, keys.SCRYPT_DEFAULT))
    envelope["ciphertext"] = base64.b64encode(box.encrypt(b"not a key at all", nonce).ciphertext).decode()
    forged = keys._pem(kind, json.dumps(envelope).encode())
    with pytest.raises(InvalidInput, match="not a private key"):
        keys.decrypt_private_key(forged, b"pw", "k")


def test_sign_verify_with_the_right_key_only():
    a, b = keys.generate(), keys.generate()
    sig = keys.sign(a, b"data")
    assert keys.verify(a.public, sig, b"data")
    assert not keys.verify(b.public, sig, b"data")
    assert not keys.verify(a.public, sig, b"datA")
