"""Checking a rotation's continuity proof (site S5) with ``cryptography``."""

from __future__ import annotations

import base64
import binascii

__all__ = ["verify_continuity"]


def verify_continuity(previous_pem: str | bytes, new_pem: str | bytes, proof: str) -> bool:
    """True when ``proof`` is the previous intermediate key's signature over the new certificate.

    The proof is Mastio's format: the old key's signature (ECDSA with
    SHA-256 for EC keys; RSA PKCS#1 v1.5 SHA-256; Ed25519) over the DER of
    the new certificate, base64url without padding. Needs ``cryptography``.
    """
    try:
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
        from cryptography.hazmat.primitives.serialization import Encoding
    except ImportError as e:  # pragma: no cover
        raise ImportError("verify_continuity needs cryptography: pip install 'mastio-ca[cryptography]'") from e

    def load(p: str | bytes) -> x509.Certificate:
        return x509.load_pem_x509_certificate(p.encode("ascii") if isinstance(p, str) else p)

    if not isinstance(proof, str) or "=" in proof or not proof:
        return False
    try:
        sig = base64.urlsafe_b64decode(proof + "=" * (-len(proof) % 4))
    except (binascii.Error, ValueError):
        return False
    pub = load(previous_pem).public_key()
    der = load(new_pem).public_bytes(Encoding.DER)
    try:
        if isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(sig, der, ec.ECDSA(hashes.SHA256()))
        elif isinstance(pub, rsa.RSAPublicKey):
            pub.verify(sig, der, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(pub, ed25519.Ed25519PublicKey):
            pub.verify(sig, der)
        else:
            return False
    except InvalidSignature:
        return False
    return True
