"""Typed exceptions, mirroring the Go client's sentinels (client/errors.go).

Every failed call raises a subclass of :class:`MastioCAError` carrying the
operation, Vault's HTTP status and Vault's messages. No exception ever
carries the request body: messages are built from the status and Vault's
``errors`` array only, and any fragment of what was sent (a CSR, a public
key, a name) that Vault might echo back is redacted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "MastioCAError",
    "ConfigurationError",
    "NotFound",
    "Conflict",
    "PolicyRefused",
    "InvalidRequest",
    "CAStateError",
    "PermissionDenied",
    "Sealed",
    "TransportError",
]


class MastioCAError(Exception):
    """Base of every error this package raises.

    Attributes:
        operation: the plugin operation that failed, e.g. ``"sign-csr"``.
        status: Vault's HTTP status, or ``None`` when no answer came back
            (or the call was refused before it was sent).
        messages: Vault's ``errors`` array (redacted, see the module doc).
    """

    def __init__(
        self,
        operation: str,
        status: int | None = None,
        messages: Iterable[str] = (),
        detail: str | None = None,
    ) -> None:
        self.operation = operation
        self.status = status
        self.messages: tuple[str, ...] = tuple(messages)
        self.detail = detail
        super().__init__(self._format())

    def _format(self) -> str:
        parts = [f"mastio-ca {self.operation}"]
        if self.status is not None:
            parts.append(str(self.status))
        if self.messages:
            parts.append("; ".join(_tidy(m) for m in self.messages))
        elif self.detail:
            parts.append(self.detail)
        return ": ".join(parts)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.operation, self.status, self.messages, self.detail))


class ConfigurationError(MastioCAError, ValueError):
    """The client's configuration is unusable (bad address, plain http, ...)."""

    def __init__(self, detail: str) -> None:
        super().__init__("config", None, (), detail)


class NotFound(MastioCAError):
    """404: no such role, no Org CA or intermediate yet (Go ``ErrNotFound``)."""


class Conflict(MastioCAError):
    """409: the CA exists (create-only) or ``cas`` did not match (Go ``ErrExists``)."""


class PolicyRefused(MastioCAError):
    """400 from a signing path: the CSR or public key breaks the role (Go ``ErrPolicy``)."""


class InvalidRequest(MastioCAError):
    """Any other 400, or arguments refused before sending (Go ``ErrInvalidRequest``)."""


class CAStateError(MastioCAError):
    """422: the request is fine but the mount's CAs cannot serve it now (Go ``ErrCAState``).

    For example an expired CA, or an intermediate left over from a replaced
    Org CA. An operator must act; retrying does not help.
    """


class PermissionDenied(MastioCAError):
    """403: the token may not call this path (Go ``ErrPermissionDenied``)."""


class Sealed(MastioCAError):
    """503 with "sealed" in Vault's message (Go ``ErrSealed``)."""


class KeyUnavailable(MastioCAError):
    """503 naming PKCS#11 (Go ``ErrKeyUnavailable``): the CA key is in an
    HSM token that cannot sign now (missing, sessions lost, PIN refused).
    Retrying may help once it is back; the mount's health says why."""


class TransportError(MastioCAError):
    """No HTTP answer: connection refused, TLS failure, timeout, ..."""


# Operations whose 400 means "refused by the role" rather than "bad field".
SIGN_OPERATIONS = frozenset({"sign-csr", "sign-public-key"})


def error_for(operation: str, status: int, messages: Iterable[str], detail: str | None = None) -> MastioCAError:
    """The exception for a Vault answer, chosen as the Go client's kindOf does."""
    messages = tuple(messages)
    cls: type[MastioCAError]
    if status == 404:
        cls = NotFound
    elif status == 409:
        cls = Conflict
    elif status == 422:
        cls = CAStateError
    elif status == 403:
        cls = PermissionDenied
    elif status == 503 and any("PKCS#11" in m for m in messages):
        cls = KeyUnavailable
    elif status == 503 and any("sealed" in m for m in messages):
        cls = Sealed
    elif status == 400:
        cls = PolicyRefused if operation in SIGN_OPERATIONS else InvalidRequest
    else:
        cls = MastioCAError
    return cls(operation, status, messages, detail)


def _tidy(message: str) -> str:
    """Keep the point of Vault's "1 error occurred:\\n\\t* ..." wrapping."""
    m = message.strip()
    head, sep, rest = m.partition("error occurred:")
    if sep:
        m = rest.strip().removeprefix("*").strip()
    return m


_PEM_BLOCK = re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?(?:-----END [A-Z0-9 ]+-----|\Z)", re.S)
# A run of base64 (or base64url) this long in a sent value is key, CSR or
# token material: it is cut out of any message that echoes it. Names and
# SPIFFE IDs (with ':' and '.') stay readable.
_B64_RUN = re.compile(r"[A-Za-z0-9+/_=-]{16,}")


def redact(messages: Iterable[str], body: Any) -> tuple[str, ...]:
    """Vault's messages without PEM blocks or base64 runs taken from the request body."""
    pieces = sorted(_pieces(body), key=len, reverse=True)
    out = []
    for m in messages:
        m = _PEM_BLOCK.sub("[PEM redacted]", m)
        for p in pieces:
            if p in m:
                m = m.replace(p, "[redacted]")
        out.append(m)
    return tuple(out)


def _pieces(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, str):
        for word in value.split():
            if _B64_RUN.fullmatch(word):
                found.add(word)
    elif isinstance(value, Mapping):
        for v in value.values():
            found |= _pieces(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            found |= _pieces(v)
    return found
