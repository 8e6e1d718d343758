"""Actor key pairs: generation, PEM serialisation and a cache of loaded keys.

RSA-2048 with ``cryptography``; public keys are served in SPKI form
(``-----BEGIN PUBLIC KEY-----``), which every fediverse server reads. Remote
keys may also arrive as PKCS#1 (``BEGIN RSA PUBLIC KEY``, older Pleroma) or as
FEP-521a Multikey (Ed25519, Fedify); both load here.
"""

from __future__ import annotations

import base64
import collections
import hashlib
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_ED25519_MULTICODEC = b"\xed\x01"


class KeyFormatError(ValueError):
    """A key that cannot be loaded."""


def generate_rsa_pem() -> tuple[str, str]:
    """Return ``(private_pem, public_pem)``: PKCS#8 private, SPKI public."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return private_pem, public_pem_of(key)


def public_pem_of(key: PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def load_private_pem(pem: str) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFormatError(f"unreadable private key: {exc}") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        raise KeyFormatError("unsupported private key type")
    return key


def load_public_pem(pem: str) -> PublicKey:
    """Load an SPKI or PKCS#1 PEM public key."""
    try:
        # cryptography reads both "PUBLIC KEY" (SPKI) and "RSA PUBLIC KEY" (PKCS#1).
        key = serialization.load_pem_public_key(pem.strip().encode())
    except (ValueError, TypeError, AttributeError) as exc:
        raise KeyFormatError(f"unreadable public key: {exc}") from None
    if not isinstance(key, (rsa.RSAPublicKey, ed25519.Ed25519PublicKey)):
        raise KeyFormatError("unsupported public key type")
    return key


def _b58decode(text: str) -> bytes:
    num = 0
    for ch in text:
        idx = _B58.find(ch)
        if idx < 0:
            raise KeyFormatError("invalid base58 character")
        num = num * 58 + idx
    raw = num.to_bytes((num.bit_length() + 7) // 8, "big") if num else b""
    pad = len(text) - len(text.lstrip("1"))
    return b"\x00" * pad + raw


def load_multikey(multibase: str) -> PublicKey:
    """Load an FEP-521a ``publicKeyMultibase`` (``z`` + base58btc, Ed25519 only)."""
    if not multibase.startswith("z"):
        raise KeyFormatError("only base58btc multibase keys are supported")
    raw = _b58decode(multibase[1:])
    if raw[:2] != _ED25519_MULTICODEC or len(raw) != 34:
        raise KeyFormatError("only Ed25519 multikeys are supported")
    return ed25519.Ed25519PublicKey.from_public_bytes(raw[2:])


def public_key_to_pem(key: PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def key_kind(key: PublicKey | PrivateKey) -> str:
    return "ed25519" if isinstance(key, (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey)) else "rsa"


def sign(key: PrivateKey, data: bytes, *, hash_name: str = "sha256") -> bytes:
    """RSASSA-PKCS1-v1_5 (the only RSA scheme the fediverse uses) or Ed25519."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    algo = hashes.SHA512() if hash_name == "sha512" else hashes.SHA256()
    return key.sign(data, padding.PKCS1v15(), algo)


def verify(key: PublicKey, signature: bytes, data: bytes, *, hash_name: str = "sha256") -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            algo = hashes.SHA512() if hash_name == "sha512" else hashes.SHA256()
            key.verify(signature, data, padding.PKCS1v15(), algo)
    except (InvalidSignature, ValueError):
        return False
    return True


class KeyCache:
    """A bounded LRU of parsed keys, keyed by the PEM text's hash.

    Parsing a PEM costs more than an RSA verify; a hub verifying thousands
    of requests a second from a few hundred peers should parse each once.
    """

    def __init__(self, size: int = 4096):
        self.size = size
        self._items: collections.OrderedDict[bytes, Any] = collections.OrderedDict()

    def _get(self, pem: str, loader) -> Any:
        digest = hashlib.sha256(pem.encode()).digest()
        item = self._items.get(digest)
        if item is not None:
            self._items.move_to_end(digest)
            return item
        item = loader(pem)
        self._items[digest] = item
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return item

    def public(self, pem: str) -> PublicKey:
        return self._get(pem, load_public_pem)

    def private(self, pem: str) -> PrivateKey:
        return self._get(pem, load_private_pem)


def fingerprint(pem: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(pem.encode()).digest()[:12]).decode()
