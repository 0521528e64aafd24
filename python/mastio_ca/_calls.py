"""Request building shared by the sync and async clients.

Each public method of the clients turns into one :class:`Call`: the
operation name, HTTP method, path under the mount, JSON body and the parser
of the answer. Only the paths in :data:`ALLOWED_PATHS` can be built, and a
role name must be a single path segment, so no call can reach a path that
returns a key (``data/``, ``metadata/``, ``kv-export/``, ``import``,
``intermediate/import``, ``roles/``, ``config``).

``crl/pem`` is the one call whose answer is not Vault's JSON envelope but
the PEM itself (``raw``); its errors are JSON as everywhere else.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from . import _models as m
from ._errors import InvalidRequest

T = TypeVar("T")

Duration = str | int | _dt.timedelta
"""A validity: Vault duration string ("8760h"), seconds (int) or timedelta."""

PEM = str | bytes

# Vault's framework.GenericNameRegex, anchored: one path segment.
_ROLE_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?")

# Every path this package can reach, relative to the mount. The sign paths
# take one role segment. Nothing here returns a private key: revoke answers
# the revocation, crl/pem the CRL (public, no token needed).
ALLOWED_PATHS = (
    "cert",
    "intermediate/cert",
    "generate",
    "intermediate/generate",
    "intermediate/rotate",
    "sign-csr/<role>",
    "sign-public-key/<role>",
    "health",
    "revoke",
    "crl/pem",
)
_ALLOWED = re.compile(
    r"(?:cert|intermediate/cert|generate|intermediate/generate|intermediate/rotate|health|revoke|crl/pem"
    r"|sign-csr/" + _ROLE_NAME.pattern + r"|sign-public-key/" + _ROLE_NAME.pattern + r")"
)

# RFC 5280 CRL reasons (section 5.3.1) as the plugin names them, in its
# order; removeFromCRL is not one a revocation can have. Each is also
# accepted in snake_case (key_compromise) and sent as the RFC name.
REVOCATION_REASONS = (
    "unspecified",
    "keyCompromise",
    "cACompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "privilegeWithdrawn",
    "aACompromise",
)
_SNAKE_REASONS = {
    "key_compromise": "keyCompromise",
    "ca_compromise": "cACompromise",
    "affiliation_changed": "affiliationChanged",
    "cessation_of_operation": "cessationOfOperation",
    "privilege_withdrawn": "privilegeWithdrawn",
    "aa_compromise": "aACompromise",
}
_REASONS = {r: r for r in REVOCATION_REASONS} | _SNAKE_REASONS

# revoke_serial's serial (hex, with or without ':' or '-', as sign-csr and
# cert print it; 1 to 20 bytes as RFC 5280 allows) and issuer (org-ca,
# intermediate-ca or a key id: the issuer's SKI in hex).
_SERIAL = re.compile(r"[0-9A-Fa-f]{1,2}(?:[:-]?[0-9A-Fa-f]{2})*")
_ISSUER = re.compile(r"org-ca|intermediate-ca|[0-9A-Fa-f]{2}(?::?[0-9A-Fa-f]{2})*")

MAX_BATCH = 100
MIN_GRACE_DAYS, MAX_GRACE_DAYS = 1, 90


@dataclass(frozen=True)
class Call(Generic[T]):
    """One plugin request: what to send and how to read the answer."""

    operation: str
    method: str
    path: str
    body: dict[str, Any] | None
    parse: Callable[[str, Any], T]
    # True when a success is the body itself (crl/pem), not {"data": ...}:
    # parse then gets the body as text.
    raw: bool = False


def check_path(path: str) -> None:
    """Refuse any path outside :data:`ALLOWED_PATHS` (a last guard before sending)."""
    if not _ALLOWED.fullmatch(path):
        raise InvalidRequest("request", None, (), f"path {path!r} is not one this client calls")


def _role(operation: str, role: str) -> str:
    if not isinstance(role, str) or not _ROLE_NAME.fullmatch(role):
        raise InvalidRequest(
            operation, None, (), "role must be a role name (letters, digits, '_', '-', '.'), e.g. agent"
        )
    return role


def _pem(operation: str, field: str, value: PEM) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidRequest(operation, None, (), f"{field} must be ASCII PEM text") from None
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(operation, None, (), f"{field} must be a non-empty PEM string")
    return value


def _duration(operation: str, field: str, value: Duration) -> str | int:
    if isinstance(value, bool):
        raise InvalidRequest(operation, None, (), f"{field} must be a duration such as '8760h', seconds or a timedelta")
    if isinstance(value, _dt.timedelta):
        seconds = value.total_seconds()
        if seconds <= 0 or not seconds.is_integer():
            raise InvalidRequest(operation, None, (), f"{field} must be a positive whole number of seconds")
        return int(seconds)
    if isinstance(value, int):
        if value <= 0:
            raise InvalidRequest(operation, None, (), f"{field} must be positive")
        return value
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise InvalidRequest(operation, None, (), f"{field} must be a duration such as '8760h', seconds or a timedelta")


def _int(operation: str, field: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(operation, None, (), f"{field} must be an integer")
    return value


def _set(body: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        body[key] = value


# ---- the calls -------------------------------------------------------------


def org_ca() -> Call[m.CACertificate]:
    return Call("cert", "GET", "cert", None, m.parse_ca)


def intermediate() -> Call[m.Intermediate]:
    return Call("intermediate-cert", "GET", "intermediate/cert", None, m.parse_intermediate)


def generate(
    *,
    org_id: str | None,
    common_name: str | None,
    key_type: str | None,
    key_bits: int | None,
    ttl: Duration | None,
    path_len: int | None,
    cas: int | None,
) -> Call[m.CACertificate]:
    op = "generate"
    body: dict[str, Any] = {}
    _set(body, "org_id", org_id)
    _set(body, "common_name", common_name)
    _set(body, "key_type", key_type)
    _set(body, "key_bits", None if key_bits is None else _int(op, "key_bits", key_bits))
    _set(body, "ttl", None if ttl is None else _duration(op, "ttl", ttl))
    _set(body, "path_len", None if path_len is None else _int(op, "path_len", path_len))
    _set(body, "cas", None if cas is None else _int(op, "cas", cas))
    return Call(op, "POST", "generate", body, m.parse_ca)


def generate_intermediate(
    *,
    key_type: str | None,
    key_bits: int | None,
    ttl: Duration | None,
    common_name: str | None,
    cas: int | None,
) -> Call[m.Intermediate]:
    op = "intermediate-generate"
    body: dict[str, Any] = {}
    _set(body, "key_type", key_type)
    _set(body, "key_bits", None if key_bits is None else _int(op, "key_bits", key_bits))
    _set(body, "ttl", None if ttl is None else _duration(op, "ttl", ttl))
    _set(body, "common_name", common_name)
    _set(body, "cas", None if cas is None else _int(op, "cas", cas))
    return Call(op, "POST", "intermediate/generate", body, m.parse_intermediate)


def rotate_intermediate(
    *,
    grace_days: int | None,
    dry_run: bool,
    cas: int | None,
    key_type: str | None,
    key_bits: int | None,
    ttl: Duration | None,
) -> Call[m.Rotation]:
    op = "intermediate-rotate"
    body: dict[str, Any] = {}
    if grace_days is not None:
        grace_days = _int(op, "grace_days", grace_days)
        if not MIN_GRACE_DAYS <= grace_days <= MAX_GRACE_DAYS:
            raise InvalidRequest(
                op, None, (), f"grace_days {grace_days} is out of range: Mastio's range is {MIN_GRACE_DAYS}-{MAX_GRACE_DAYS}"
            )
        body["grace_days"] = grace_days
    if not isinstance(dry_run, bool):
        raise InvalidRequest(op, None, (), "dry_run must be True or False")
    if dry_run:  # omitted when false, so tokens allowed only cas still rotate
        body["dry_run"] = True
    _set(body, "cas", None if cas is None else _int(op, "cas", cas))
    _set(body, "key_type", key_type)
    _set(body, "key_bits", None if key_bits is None else _int(op, "key_bits", key_bits))
    _set(body, "ttl", None if ttl is None else _duration(op, "ttl", ttl))
    return Call(op, "POST", "intermediate/rotate", body, m.parse_rotation)


def sign_csr(role: str, csr_pem: PEM, ttl: Duration | None) -> Call[m.SignedCertificate]:
    op = "sign-csr"
    body: dict[str, Any] = {"csr": _pem(op, "csr_pem", csr_pem)}
    _set(body, "ttl", None if ttl is None else _duration(op, "ttl", ttl))
    return Call(op, "POST", "sign-csr/" + _role(op, role), body, m.parse_signed)


def sign_csr_batch(role: str, csrs: Iterable[PEM], ttl: Duration | None) -> Call[m.BatchResult]:
    op = "sign-csr"
    if isinstance(csrs, (str, bytes)):
        raise InvalidRequest(op, None, (), "csrs must be a list of PEM CSRs, not one string")
    pems = [_pem(op, f"csrs[{i}]", c) for i, c in enumerate(csrs)]
    _batch_size(op, len(pems))
    body: dict[str, Any] = {"csrs": pems}
    _set(body, "ttl", None if ttl is None else _duration(op, "ttl", ttl))
    return Call(op, "POST", "sign-csr/" + _role(op, role), body, m.parse_batch)


def _subject(op: str, body: dict[str, Any], name: str | None, spiffe_id: str | None, where: str = "") -> None:
    if name is not None and not isinstance(name, str):
        raise InvalidRequest(op, None, (), f"{where}name must be a string")
    if spiffe_id is not None and not isinstance(spiffe_id, str):
        raise InvalidRequest(op, None, (), f"{where}spiffe_id must be a string")
    _set(body, "name", name)
    _set(body, "spiffe_id", spiffe_id)


def sign_public_key(
    role: str, public_key_pem: PEM, name: str | None, spiffe_id: str | None, ttl: Duration | None
) -> Call[m.SignedCertificate]:
    op = "sign-public-key"
    body: dict[str, Any] = {"public_key": _pem(op, "public_key_pem", public_key_pem)}
    _subject(op, body, name, spiffe_id)
    _set(body, "ttl", None if ttl is None else _duration(op, "ttl", ttl))
    return Call(op, "POST", "sign-public-key/" + _role(op, role), body, m.parse_signed)


def sign_public_key_batch(
    role: str, requests: Iterable[m.PublicKeyRequest | Mapping[str, Any]], ttl: Duration | None
) -> Call[m.BatchResult]:
    op = "sign-public-key"
    entries = []
    for i, r in enumerate(requests):
        if isinstance(r, m.PublicKeyRequest):
            r = {"public_key": r.public_key, "name": r.name, "spiffe_id": r.spiffe_id}
        if not isinstance(r, Mapping):
            raise InvalidRequest(op, None, (), f"requests[{i}] must be a PublicKeyRequest or a mapping")
        unknown = set(r) - {"public_key", "name", "spiffe_id"}
        if unknown:
            raise InvalidRequest(
                op, None, (), f"requests[{i}] has unknown fields {sorted(unknown)}; allowed: public_key, name, spiffe_id"
            )
        entry: dict[str, Any] = {"public_key": _pem(op, f"requests[{i}].public_key", r.get("public_key"))}
        _subject(op, entry, r.get("name"), r.get("spiffe_id"), f"requests[{i}].")
        entries.append(entry)
    _batch_size(op, len(entries))
    body: dict[str, Any] = {"requests": entries}
    _set(body, "ttl", None if ttl is None else _duration(op, "ttl", ttl))
    return Call(op, "POST", "sign-public-key/" + _role(op, role), body, m.parse_batch)


def _batch_size(op: str, n: int) -> None:
    if not 1 <= n <= MAX_BATCH:
        raise InvalidRequest(op, None, (), f"a batch holds 1 to {MAX_BATCH} entries, not {n}")


def health() -> Call[m.Health]:
    return Call("health", "GET", "health", None, m.parse_health)


# ---- revocation ------------------------------------------------------------


def _reason(operation: str, reason: str) -> str:
    name = _REASONS.get(reason) if isinstance(reason, str) else None
    if name is None:  # the value itself is not echoed: errors carry nothing the caller sent
        raise InvalidRequest(
            operation, None, (),
            f"reason must be an RFC 5280 CRL reason: one of {', '.join(REVOCATION_REASONS)}"
            " (or its snake_case form, e.g. key_compromise)",
        )
    return name


def _serial(operation: str, serial: str | int) -> str:
    if isinstance(serial, int) and not isinstance(serial, bool):
        if not 0 < serial < 1 << 160:
            raise InvalidRequest(operation, None, (), "serial_number must be a positive serial of at most 20 bytes")
        b = serial.to_bytes((serial.bit_length() + 7) // 8, "big")
        return ":".join(f"{c:02x}" for c in b)
    if isinstance(serial, str):
        s = serial.strip()
        digits = s.replace(":", "").replace("-", "")
        if _SERIAL.fullmatch(s) and len(digits) <= 40 and int(digits, 16) > 0:
            return s
    raise InvalidRequest(
        operation, None, (), "serial_number must be the certificate's serial in hex (as sign-csr returns it, e.g. 4f:2a:...) or an int"
    )


def _issuer(operation: str, issuer: str) -> str:
    ref = issuer.strip() if isinstance(issuer, str) else ""
    if not _ISSUER.fullmatch(ref):
        raise InvalidRequest(
            operation, None, (), "issuer must be org-ca, intermediate-ca or an issuer key id (its subject key identifier in hex)"
        )
    if ref in ("org-ca", "intermediate-ca"):
        return ref
    return ref.replace(":", "").lower()  # the plugin's key ids: lowercase hex, as Revocation.issuer_id


def _rfc3339(operation: str, field: str, value: _dt.datetime) -> str:
    if not isinstance(value, _dt.datetime):
        raise InvalidRequest(operation, None, (), f"{field} must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRequest(
            operation, None, (),
            f"{field} must be timezone-aware, e.g. SignedCertificate.not_after or .replace(tzinfo=datetime.timezone.utc)",
        )
    utc = value.astimezone(_dt.timezone.utc)
    return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds").replace("+00:00", "Z")


def revoke(certificate_pem: PEM, reason: str) -> Call[m.Revocation]:
    op = "revoke"
    name = _reason(op, reason)
    body: dict[str, Any] = {"certificate": _pem(op, "certificate_pem", certificate_pem), "reason": name}
    return Call(op, "POST", "revoke", body, m.parse_revocation)


def revoke_serial(serial_number: str | int, issuer: str, not_after: _dt.datetime, reason: str) -> Call[m.Revocation]:
    op = "revoke"
    name = _reason(op, reason)
    body: dict[str, Any] = {
        "serial_number": _serial(op, serial_number),
        "issuer": _issuer(op, issuer),
        "not_after": _rfc3339(op, "not_after", not_after),
        "reason": name,
    }
    return Call(op, "POST", "revoke", body, m.parse_revocation)


def crl_pem() -> Call[str]:
    return Call("crl", "GET", "crl/pem", None, m.parse_crl_pem, raw=True)
