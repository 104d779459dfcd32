"""The Ed25519 key that signs audit checkpoints, kept outside the database.

The private key lives in a PEM file (default ``<data_dir>/keys/audit_ed25519.pem``, or
``NEURAL_MLOPS_AUDIT_KEY_FILE``: :mod:`neural.mlops.server.audit.config`), created with
mode 0600 on first start. Someone who can rewrite the database but not read this file
cannot forge a checkpoint, so a rewritten chain no longer matches the signed heads.
``key_id`` is the SHA-256 of the raw public key (first 16 hex digits) and names the key in
every checkpoint and export seal.

Rotation replaces the private key and keeps the old public key in ``retired/`` beside the
key file (``<key_id>.pub``): the checkpoints it signed still verify, and a checkpoint
signed by a key in neither place is reported as signed by an unknown key.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from neural.mlops.server.errors import FailedPrecondition
from neural.mlops.server.fsutil import fsync_dir, write_synced


def public_key_id(pub: Ed25519PublicKey) -> str:
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(pub: Ed25519PublicKey) -> str:
    return pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise FailedPrecondition(f"not a PEM public key: {exc}", field="public_key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise FailedPrecondition("the public key is not an Ed25519 key", field="public_key")
    return key


def verify_signature(pub: Ed25519PublicKey, message: bytes, signature_b64: str) -> bool:
    try:
        pub.verify(base64.b64decode(signature_b64, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True


class SigningKey:
    """The checkpoint key of one store."""

    def __init__(self, private: Ed25519PrivateKey, path: Path) -> None:
        self._private = private
        self.path = path
        self.public = private.public_key()
        self.key_id = public_key_id(self.public)
        self.public_pem = public_key_pem(self.public)

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        """Load the key, creating it (0600, parent folder 0700) if it does not exist yet."""
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise FailedPrecondition(f"{path} does not hold an Ed25519 private key")
            return cls(key, path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        tmp = _write_private(path, key)
        try:
            # link() fails if another process created the key meanwhile: theirs wins.
            os.link(tmp, path)
        except FileExistsError:
            return cls.load_or_create(path)
        finally:
            tmp.unlink(missing_ok=True)
        path.with_suffix(".pub").write_text(public_key_pem(key.public_key()))
        return cls(key, path)

    def rotate(self) -> SigningKey:
        """A new key in this key's file; this key's public half goes to ``retired/``
        first, so nothing it signed becomes unverifiable."""
        retired = retired_dir(self.path)
        retired.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_synced(retired / f"{self.key_id}.pub", self.public_pem.encode())
        fsync_dir(retired)
        key = Ed25519PrivateKey.generate()
        tmp = _write_private(self.path, key)
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)
        self.path.with_suffix(".pub").write_text(public_key_pem(key.public_key()))
        return SigningKey(key, self.path)

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self._private.sign(message)).decode()


def retired_dir(key_path: Path) -> Path:
    return key_path.parent / "retired"


def load_retired(key_path: Path) -> dict[str, Ed25519PublicKey]:
    """The public keys of rotated-out keys, by key id (computed from each key, not taken
    from its file name)."""
    out: dict[str, Ed25519PublicKey] = {}
    folder = retired_dir(key_path)
    for f in sorted(folder.glob("*.pub")) if folder.is_dir() else ():
        pub = load_public_key(f.read_bytes())
        out[public_key_id(pub)] = pub
    return out


class Keyring:
    """The key that signs now and the public halves of the keys it replaced.

    Another process on the same store (a second embedded user, the control plane) may
    rotate the key: :meth:`refresh` takes the key file's current key and re-reads
    ``retired/`` (a deleted retired key must show up as unknown)."""

    def __init__(self, path: Path) -> None:
        self.key = SigningKey.load_or_create(path)
        self.retired = load_retired(path)
        self._stat = _file_stat(path)

    def refresh(self) -> None:
        now = _file_stat(self.key.path)
        if now != self._stat:
            self.key = SigningKey.load_or_create(self.key.path)
            self._stat = _file_stat(self.key.path)
        self.retired = load_retired(self.key.path)

    def public_key(self, key_id: str) -> Ed25519PublicKey | None:
        """The public key named ``key_id``: the current one or a retired one."""
        return self.key.public if key_id == self.key.key_id else self.retired.get(key_id)

    def rotate(self) -> tuple[SigningKey, SigningKey]:
        """Replace the key in its file; returns (old, new). The old key can still sign
        (its endorsement of the new one) and its public half verifies from now on."""
        old = self.key
        new = old.rotate()
        self._stat = _file_stat(new.path)
        self.retired[old.key_id] = old.public
        self.key = new
        return old, new


def _file_stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def _write_private(path: Path, key: Ed25519PrivateKey) -> Path:
    """The PEM of ``key`` in a new 0600 file beside ``path``, synced; returns its path."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    write_synced(tmp, pem, mode=0o600, exclusive=True)
    return tmp
