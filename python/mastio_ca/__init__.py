"""mastio_ca: a sign-only client for the mastio-ca Vault secrets engine.

Mastio's Org CA and Mastio Intermediate CA live inside Vault and sign
there; this package asks Vault for certificates and never for a key. No
method reaches a path that can return a private key (``data/``,
``metadata/``, ``kv-export/``, ``import``, ``intermediate/import``,
``roles/``, ``config``). Beyond signing it can revoke a certificate the
mount issued and read the CRL (:meth:`MastioCA.revoke`,
:meth:`MastioCA.crl_pem`).

    from mastio_ca import AsyncMastioCA

    async with AsyncMastioCA.from_env() as ca:   # MCP_PROXY_VAULT_ADDR, ..._TOKEN
        leaf = await ca.sign_public_key("agent", public_key_pem, name="agent-1")
        print(leaf.certificate, leaf.issuing_ca)

:class:`MastioCA` has the same methods, synchronous. Results are frozen
dataclasses of PEM strings (:class:`SignedCertificate`, ...); failures are
:class:`MastioCAError` subclasses mirroring the Go client's sentinels.
"""

from ._calls import ALLOWED_PATHS, MAX_BATCH, REVOCATION_REASONS
from ._client import DEFAULT_MOUNT, DEFAULT_TIMEOUT, AsyncMastioCA, MastioCA
from ._continuity import verify_continuity
from ._errors import (
    CAStateError,
    ConfigurationError,
    Conflict,
    InvalidRequest,
    KeyUnavailable,
    MastioCAError,
    NotFound,
    PermissionDenied,
    PolicyRefused,
    Sealed,
    TransportError,
)
from ._models import (
    HAVE_CRYPTOGRAPHY,
    BatchItem,
    BatchResult,
    CACertificate,
    Health,
    Intermediate,
    PublicKeyRequest,
    RetiredIntermediate,
    Revocation,
    Rotation,
    SignedCertificate,
)

__version__ = "0.1.0"

__all__ = [
    "ALLOWED_PATHS",
    "MAX_BATCH",
    "REVOCATION_REASONS",
    "DEFAULT_MOUNT",
    "DEFAULT_TIMEOUT",
    "HAVE_CRYPTOGRAPHY",
    "AsyncMastioCA",
    "MastioCA",
    "verify_continuity",
    "MastioCAError",
    "ConfigurationError",
    "NotFound",
    "Conflict",
    "PolicyRefused",
    "InvalidRequest",
    "KeyUnavailable",
    "CAStateError",
    "PermissionDenied",
    "Sealed",
    "TransportError",
    "CACertificate",
    "Intermediate",
    "RetiredIntermediate",
    "Rotation",
    "SignedCertificate",
    "BatchItem",
    "BatchResult",
    "PublicKeyRequest",
    "Health",
    "Revocation",
]
