"""Result types: small frozen dataclasses holding PEM strings.

Each certificate-bearing result also offers the parsed certificate
(``x509`` and similar properties, ``cryptography.x509.Certificate``) when
the optional ``cryptography`` package is importable, else ``None``.
Parsing happens on first access and is cached.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ._errors import MastioCAError, PolicyRefused

if TYPE_CHECKING:  # pragma: no cover
    from cryptography import x509 as _x509

__all__ = [
    "HAVE_CRYPTOGRAPHY",
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

try:  # optional dependency
    from cryptography import x509 as _crypto_x509

    HAVE_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - exercised only without cryptography
    _crypto_x509 = None  # type: ignore[assignment]
    HAVE_CRYPTOGRAPHY = False


def _load(pem: str | None) -> _x509.Certificate | None:
    if not pem or _crypto_x509 is None:
        return None
    return _crypto_x509.load_pem_x509_certificate(pem.encode("ascii"))


def _load_all(pems: Sequence[str]) -> tuple[_x509.Certificate, ...] | None:
    if _crypto_x509 is None:
        return None
    return tuple(_crypto_x509.load_pem_x509_certificate(p.encode("ascii")) for p in pems)


@dataclass(frozen=True)
class CACertificate:
    """The Org CA (``cert``, ``generate``) or, as :class:`Intermediate`, the intermediate.

    Attributes mirror the plugin's answer: ``certificate`` (PEM),
    ``ca_chain`` (PEMs, this CA first), ``fingerprint_sha256`` (hex of the
    DER), ``serial_number`` (colon hex), validity, key type and bits,
    ``source`` ("generated" or "imported"), ``version`` (the value ``cas``
    must carry to replace it) and ``kv_export`` (whether the KV mirror
    serves its key).
    """

    certificate: str
    ca_chain: tuple[str, ...]
    fingerprint_sha256: str
    serial_number: str
    not_before: _dt.datetime | None
    not_after: _dt.datetime | None
    key_type: str
    key_bits: int
    source: str
    version: int
    kv_export: bool

    @cached_property
    def x509(self) -> _x509.Certificate | None:
        """The parsed certificate, or ``None`` without ``cryptography``."""
        return _load(self.certificate)

    @cached_property
    def chain_x509(self) -> tuple[_x509.Certificate, ...] | None:
        """The parsed ``ca_chain``, or ``None`` without ``cryptography``."""
        return _load_all(self.ca_chain)


@dataclass(frozen=True)
class RetiredIntermediate:
    """A rotated-out intermediate still published during its grace period."""

    certificate: str
    serial_number: str
    grace_until: _dt.datetime | None
    continuity_proof: str

    @cached_property
    def x509(self) -> _x509.Certificate | None:
        """The parsed certificate, or ``None`` without ``cryptography``."""
        return _load(self.certificate)


@dataclass(frozen=True)
class Intermediate(CACertificate):
    """The Mastio Intermediate CA, with what relying parties need during a grace.

    ``previous`` and ``previous_grace_until`` describe the intermediate
    rotated out last (while its grace lasts), ``continuity_proof`` is that
    one's key's signature over this certificate, ``retired`` lists every
    intermediate still in its grace, and ``bundle`` is every intermediate
    to accept now, this one first.
    """

    previous: str | None = None
    previous_grace_until: _dt.datetime | None = None
    continuity_proof: str | None = None
    retired: tuple[RetiredIntermediate, ...] = ()
    bundle: tuple[str, ...] = ()

    @cached_property
    def previous_x509(self) -> _x509.Certificate | None:
        """The parsed ``previous``, or ``None``."""
        return _load(self.previous)

    @cached_property
    def bundle_x509(self) -> tuple[_x509.Certificate, ...] | None:
        """The parsed ``bundle``, or ``None`` without ``cryptography``."""
        return _load_all(self.bundle)


@dataclass(frozen=True)
class Rotation(Intermediate):
    """The answer of ``intermediate/rotate``: the NEW intermediate plus Mastio's fields.

    ``continuity_proof`` is the old intermediate key's ECDSA-SHA256
    signature over the new certificate's DER, base64url without padding
    (check it with :func:`mastio_ca.verify_continuity`). With
    ``dry_run=True`` nothing was stored: the certificate and proof are what
    a real rotation would have produced.
    """

    old_intermediate_cn: str = ""
    new_intermediate_cn: str = ""
    grace_days: int | None = None
    dry_run: bool = False

    def mastio_response(self) -> dict[str, Any]:
        """The fields Mastio's ``POST /v1/admin/mastio-ca/rotate`` returns.

        Mastio adds its own ``new_leaf_kid`` after re-issuing its leaf
        (site S6); the plugin knows nothing of it.
        """
        return {
            "old_intermediate_cn": self.old_intermediate_cn,
            "new_intermediate_cn": self.new_intermediate_cn,
            "grace_days": self.grace_days,
            "dry_run": self.dry_run,
            "continuity_proof": self.continuity_proof,
        }


@dataclass(frozen=True)
class SignedCertificate:
    """A leaf from ``sign-csr`` or ``sign-public-key``.

    ``issuing_ca`` is the PEM of the CA that signed it; ``ca_chain`` runs
    from that CA up to the Org CA.
    """

    certificate: str
    issuing_ca: str
    ca_chain: tuple[str, ...]
    serial_number: str
    not_after: _dt.datetime | None
    spiffe_id: str

    @property
    def pem_with_issuer(self) -> str:
        """Leaf then issuing CA, the two-certificate PEM Mastio hands out (S9, S11, S12)."""
        leaf = self.certificate if self.certificate.endswith("\n") else self.certificate + "\n"
        return leaf + self.issuing_ca

    @cached_property
    def x509(self) -> _x509.Certificate | None:
        """The parsed leaf, or ``None`` without ``cryptography``."""
        return _load(self.certificate)

    @cached_property
    def issuing_ca_x509(self) -> _x509.Certificate | None:
        """The parsed issuing CA, or ``None`` without ``cryptography``."""
        return _load(self.issuing_ca)


@dataclass(frozen=True)
class BatchItem:
    """One entry of a batch signing: a certificate, or the refusal of that entry."""

    index: int
    certificate: SignedCertificate | None = None
    error: PolicyRefused | None = None

    @property
    def ok(self) -> bool:
        """True when this entry was signed."""
        return self.certificate is not None


@dataclass(frozen=True)
class BatchResult:
    """The answer of a batch signing, in request order; iterate for the items."""

    items: tuple[BatchItem, ...]
    failed: int
    issuing_ca: str
    ca_chain: tuple[str, ...]

    def __iter__(self) -> Iterator[BatchItem]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> BatchItem:
        return self.items[i]

    def certificates(self) -> list[SignedCertificate]:
        """Every certificate, in order; raises the first entry's refusal if any failed."""
        out = []
        for item in self.items:
            if item.certificate is None:
                assert item.error is not None
                raise item.error
            out.append(item.certificate)
        return out


@dataclass(frozen=True)
class PublicKeyRequest:
    """One entry of :meth:`MastioCA.sign_public_key_batch`: a PEM SPKI and whom it is for."""

    public_key: str
    name: str | None = None
    spiffe_id: str | None = None


@dataclass(frozen=True)
class Health:
    """The plugin's ``health``: build, counters, and days left on each CA."""

    version: str
    commit: str
    signed: int
    goroutines: int
    heap_alloc_bytes: int
    rss_bytes: int
    uptime_seconds: int
    org_ca_not_after: _dt.datetime | None = None
    org_ca_days_left: int | None = None
    intermediate_ca_not_after: _dt.datetime | None = None
    intermediate_ca_days_left: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Revocation:
    """The answer of ``revoke``: the certificate is in its issuer's CRL and OCSP says revoked.

    ``serial_number`` is colon hex (as :class:`SignedCertificate` has it),
    ``reason`` the RFC 5280 name (``keyCompromise``, ...), ``not_after``
    the certificate's (the revocation is kept until then), ``issuer_id``
    the issuing CA's key id (its SKI in hex; ``issuer/<issuer_id>/crl`` is
    its CRL). ``already_revoked`` is True when the serial was revoked
    before: ``revocation_time`` and ``reason`` are then the first
    revocation's, and ``crl_number`` the issuer's current complete CRL;
    otherwise ``crl_number`` is the complete CRL that first lists it.
    """

    serial_number: str
    revocation_time: _dt.datetime
    reason: str
    not_after: _dt.datetime
    issuer_id: str
    already_revoked: bool
    crl_number: int


# ---- parsing of the plugin's answers ------------------------------------


def parse_time(value: Any) -> _dt.datetime | None:
    """An RFC 3339 time from the plugin as an aware datetime (None if absent)."""
    if not value:
        return None
    if not isinstance(value, str):
        raise ValueError("time is not a string")
    s = value.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    # Go may print nanoseconds; datetime takes at most microseconds.
    head, dot, tail = s.partition(".")
    if dot:
        digits = len(tail) - len(tail.lstrip("0123456789"))
        frac, rest = tail[:digits], tail[digits:]
        s = head + "." + frac[:6].ljust(6, "0") + rest
    return _dt.datetime.fromisoformat(s)


class _Fields:
    """Typed access to one answer's ``data``, raising MastioCAError on a bad shape."""

    def __init__(self, operation: str, data: Mapping[str, Any]):
        self.op = operation
        self.data = data

    def _bad(self, key: str, what: str) -> MastioCAError:
        return MastioCAError(self.op, None, (), f"unexpected answer from the plugin: {key} is not {what}")

    def text(self, key: str, required: bool = True) -> str:
        v = self.data.get(key)
        if v is None or v == "":
            if required:
                raise self._bad(key, "present")
            return ""
        if not isinstance(v, str):
            raise self._bad(key, "a string")
        return v

    def opt_text(self, key: str) -> str | None:
        return self.text(key, required=False) or None

    def number(self, key: str, default: int | None = 0) -> int | None:
        v = self.data.get(key)
        if v is None:
            return default
        if isinstance(v, bool):
            raise self._bad(key, "a number")
        if isinstance(v, str):  # Vault's json.Number or an old plugin
            try:
                return int(v)
            except ValueError:
                raise self._bad(key, "a number") from None
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if not isinstance(v, int):
            raise self._bad(key, "a number")
        return v

    def flag(self, key: str) -> bool:
        v = self.data.get(key, False)
        if not isinstance(v, bool):
            raise self._bad(key, "a boolean")
        return v

    def texts(self, key: str) -> tuple[str, ...]:
        v = self.data.get(key) or []
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self._bad(key, "a list of strings")
        return tuple(v)

    def when(self, key: str) -> _dt.datetime | None:
        try:
            return parse_time(self.data.get(key))
        except ValueError:
            raise self._bad(key, "an RFC 3339 time") from None

    def time(self, key: str) -> _dt.datetime:
        v = self.when(key)
        if v is None:
            raise self._bad(key, "present")
        return v

    def objects(self, key: str) -> list[Mapping[str, Any]]:
        v = self.data.get(key) or []
        if not isinstance(v, list) or not all(isinstance(x, Mapping) for x in v):
            raise self._bad(key, "a list of objects")
        return v


def _ca_fields(f: _Fields) -> dict[str, Any]:
    return dict(
        certificate=f.text("certificate"),
        ca_chain=f.texts("ca_chain"),
        fingerprint_sha256=f.text("fingerprint_sha256", required=False),
        serial_number=f.text("serial_number", required=False),
        not_before=f.when("not_before"),
        not_after=f.when("not_after"),
        key_type=f.text("key_type", required=False),
        key_bits=f.number("key_bits"),
        source=f.text("source", required=False),
        version=f.number("version"),
        kv_export=f.flag("kv_export"),
    )


def _intermediate_fields(f: _Fields) -> dict[str, Any]:
    fields = _ca_fields(f)
    retired = []
    for r in f.objects("retired"):
        rf = _Fields(f.op, r)
        retired.append(
            RetiredIntermediate(
                certificate=rf.text("certificate"),
                serial_number=rf.text("serial_number", required=False),
                grace_until=rf.when("grace_until"),
                continuity_proof=rf.text("continuity_proof", required=False),
            )
        )
    bundle = f.texts("bundle") or (fields["certificate"],)
    fields.update(
        previous=f.opt_text("previous"),
        previous_grace_until=f.when("previous_grace_until"),
        continuity_proof=f.opt_text("continuity_proof"),
        retired=tuple(retired),
        bundle=bundle,
    )
    return fields


def parse_ca(operation: str, data: Mapping[str, Any]) -> CACertificate:
    """Parse ``cert`` / ``generate``."""
    return CACertificate(**_ca_fields(_Fields(operation, data)))


def parse_intermediate(operation: str, data: Mapping[str, Any]) -> Intermediate:
    """Parse ``intermediate/cert`` / ``intermediate/generate``."""
    return Intermediate(**_intermediate_fields(_Fields(operation, data)))


def parse_rotation(operation: str, data: Mapping[str, Any]) -> Rotation:
    """Parse ``intermediate/rotate``."""
    f = _Fields(operation, data)
    fields = _intermediate_fields(f)
    return Rotation(
        **fields,
        old_intermediate_cn=f.text("old_intermediate_cn", required=False),
        new_intermediate_cn=f.text("new_intermediate_cn", required=False),
        grace_days=f.number("grace_days", default=None),
        dry_run=f.flag("dry_run"),
    )


def _signed(f: _Fields, issuing_ca: str, ca_chain: tuple[str, ...]) -> SignedCertificate:
    return SignedCertificate(
        certificate=f.text("certificate"),
        issuing_ca=issuing_ca,
        ca_chain=ca_chain,
        serial_number=f.text("serial_number", required=False),
        not_after=f.when("not_after"),
        spiffe_id=f.text("spiffe_id", required=False),
    )


def parse_signed(operation: str, data: Mapping[str, Any]) -> SignedCertificate:
    """Parse a single ``sign-csr`` / ``sign-public-key``."""
    f = _Fields(operation, data)
    return _signed(f, f.text("issuing_ca"), f.texts("ca_chain"))


def parse_batch(operation: str, data: Mapping[str, Any]) -> BatchResult:
    """Parse a batch ``sign-csr`` / ``sign-public-key``."""
    f = _Fields(operation, data)
    issuing_ca, ca_chain = f.text("issuing_ca", required=False), f.texts("ca_chain")
    items = []
    for entry in f.objects("certificates"):
        ef = _Fields(operation, entry)
        index = ef.number("index")
        assert index is not None
        err = ef.opt_text("error")
        if err is not None:
            items.append(BatchItem(index=index, error=PolicyRefused(operation, 400, (err,))))
        else:
            items.append(BatchItem(index=index, certificate=_signed(ef, issuing_ca, ca_chain)))
    failed = f.number("failed")
    assert failed is not None
    return BatchResult(items=tuple(items), failed=failed, issuing_ca=issuing_ca, ca_chain=ca_chain)


def parse_health(operation: str, data: Mapping[str, Any]) -> Health:
    """Parse ``health``."""
    f = _Fields(operation, data)
    return Health(
        version=f.text("version", required=False),
        commit=f.text("commit", required=False),
        signed=f.number("signed") or 0,
        goroutines=f.number("goroutines") or 0,
        heap_alloc_bytes=f.number("heap_alloc_bytes") or 0,
        rss_bytes=f.number("rss_bytes") or 0,
        uptime_seconds=f.number("uptime_seconds") or 0,
        org_ca_not_after=f.when("org-ca_not_after"),
        org_ca_days_left=f.number("org-ca_days_left", default=None),
        intermediate_ca_not_after=f.when("intermediate-ca_not_after"),
        intermediate_ca_days_left=f.number("intermediate-ca_days_left", default=None),
        raw=dict(data),
    )


def parse_revocation(operation: str, data: Mapping[str, Any]) -> Revocation:
    """Parse ``revoke``."""
    f = _Fields(operation, data)
    crl_number = f.number("crl_number", default=None)
    if crl_number is None:
        raise f._bad("crl_number", "present")
    return Revocation(
        serial_number=f.text("serial_number"),
        revocation_time=f.time("revocation_time"),
        reason=f.text("reason"),
        not_after=f.time("not_after"),
        issuer_id=f.text("issuer_id"),
        already_revoked=f.flag("already_revoked"),
        crl_number=crl_number,
    )


_PEM_CRL_BEGIN, _PEM_CRL_END = "-----BEGIN X509 CRL-----", "-----END X509 CRL-----"


def parse_crl_pem(operation: str, body: str) -> str:
    """Check ``crl/pem``'s raw answer is one PEM CRL and return it."""
    text = body.strip()
    if not (text.startswith(_PEM_CRL_BEGIN) and text.endswith(_PEM_CRL_END) and text.count(_PEM_CRL_BEGIN) == 1):
        raise MastioCAError(operation, None, (), "unexpected answer from the plugin: not one PEM CRL")
    return text + "\n"
