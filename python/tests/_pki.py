"""Certificate checks for the tests, independent of the plugin's code.

A small DER reader pulls the subject and issuer out of the TBSCertificate
byte for byte (so order and string tags are seen as encoded, not as a
library re-encodes them); everything else is read with ``cryptography``.
:class:`Profile` describes one certificate profile field by field, and
:data:`MASTIO` holds the reference profiles of
``shared/reference/mastio-signing-sites.md`` section 2.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass, field, replace

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

UTF8STRING = 0x0C
PRINTABLESTRING = 0x13
OID_DER = {"CN": bytes.fromhex("550403"), "O": bytes.fromhex("55040a")}
_NAME_OID = {"CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME}

# ---- DER ---------------------------------------------------------------------


def _tlv(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the TLV at pos."""
    tag = buf[pos]
    n = buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[pos : pos + k], "big")
        pos += k
    return tag, pos, pos + n


def _children(buf: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, tlv start, value start, value end) of each child in buf[start:end]."""
    out = []
    pos = start
    while pos < end:
        tag, vs, ve = _tlv(buf, pos)
        out.append((tag, pos, vs, ve))
        pos = ve
    return out


def tbs_names(cert: x509.Certificate) -> tuple[bytes, bytes]:
    """The issuer and subject Name DER exactly as encoded in the certificate."""
    tbs = cert.tbs_certificate_bytes
    tag, vs, ve = _tlv(tbs, 0)
    assert tag == 0x30
    kids = _children(tbs, vs, ve)
    if kids[0][0] == 0xA0:  # [0] version
        kids = kids[1:]
    # serial, signature algorithm, issuer, validity, subject, ...
    issuer, subject = kids[2], kids[4]
    return tbs[issuer[1] : issuer[3]], tbs[subject[1] : subject[3]]


def rdns(name_der: bytes) -> list[list[tuple[bytes, int, bytes]]]:
    """A Name as its RDNs in order, each a list of (OID DER, string tag, value bytes)."""
    tag, vs, ve = _tlv(name_der, 0)
    assert tag == 0x30
    out = []
    for stag, _, svs, sve in _children(name_der, vs, ve):
        assert stag == 0x31, "an RDN is a SET"
        rdn = []
        for atag, _, avs, ave in _children(name_der, svs, sve):
            assert atag == 0x30
            (otag, _, ovs, ove), (vtag, _, vvs, vve) = _children(name_der, avs, ave)
            assert otag == 0x06
            rdn.append((name_der[ovs:ove], vtag, name_der[vvs:vve]))
        out.append(rdn)
    return out


def subject_der(cert: x509.Certificate) -> bytes:
    return tbs_names(cert)[1]


def issuer_der(cert: x509.Certificate) -> bytes:
    return tbs_names(cert)[0]


def name_der(attrs: tuple[tuple[str, str], ...]) -> bytes:
    """The DER Mastio writes for these attributes: one RDN each, in order, library default tags (UTF8String)."""
    return x509.Name([x509.NameAttribute(_NAME_OID[a], v) for a, v in attrs]).public_bytes()


# ---- keys and signatures ---------------------------------------------------


def _public(key):
    return key.public_key() if hasattr(key, "private_bytes") else key


def spki_der(key) -> bytes:
    return _public(key).public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_pem(key) -> str:
    return _public(key).public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def private_pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def verify_signed_by(cert: x509.Certificate, issuer_key) -> None:
    """Raise unless issuer_key made cert's signature (RSA must be PKCS#1 v1.5, as Mastio verifies)."""
    h = cert.signature_hash_algorithm
    assert isinstance(h, hashes.SHA256), f"signature hash is {h.name}, Mastio signs SHA-256"
    if isinstance(issuer_key, ec.EllipticCurvePublicKey):
        issuer_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(h))
    elif isinstance(issuer_key, rsa.RSAPublicKey):
        issuer_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), h)
    else:  # pragma: no cover
        raise AssertionError(f"unexpected issuer key {type(issuer_key)}")


def ski_sha256_truncated(key) -> bytes:
    """The plugin's SKI: SHA-256 of the subjectPublicKey BIT STRING, first 20 bytes (RFC 7093 method 1)."""
    der = spki_der(key)
    # SubjectPublicKeyInfo ::= SEQUENCE { algorithm, subjectPublicKey BIT STRING }
    _, vs, ve = _tlv(der, 0)
    kids = _children(der, vs, ve)
    _, _, bvs, bve = kids[1]
    return hashlib.sha256(der[bvs + 1 : bve]).digest()[:20]  # skip the unused-bits octet


def csr_pem(key, *, sans, cn: str = "ignored by the plugin") -> str:
    b = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


# ---- profiles ------------------------------------------------------------------

KU_NAMES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)


@dataclass(frozen=True)
class Profile:
    """One certificate profile, every field the reference table names.

    bc: None for no basicConstraints, else (ca, path_len), always critical.
    key_usage: None for no keyUsage, else the set of bits, always critical.
    eku: None for none, else the OIDs in order (non-critical).
    san: None for none, else ((kind, value), ...) in order.
    ski / aki: present or not; aki is key-identifier only.
    validity: notAfter - now; skew: now - notBefore.
    """

    subject: tuple[tuple[str, str], ...]
    bc: tuple[bool, int | None] | None
    key_usage: frozenset[str] | None
    eku: tuple[x509.ObjectIdentifier, ...] | None
    san: tuple[tuple[str, str], ...] | None
    san_critical: bool
    ski: bool
    aki: bool
    validity: dt.timedelta
    skew: dt.timedelta
    extra: dict = field(default_factory=dict, compare=False)


DAY = dt.timedelta(days=1)
FIVE_MIN = dt.timedelta(minutes=5)
NO_SKEW = dt.timedelta(0)
ORG = "acme"
TD = "cullis.local"


def _mastio_profiles(org: str = ORG, td: str = TD) -> dict[str, Profile]:
    ca_bits = frozenset({"key_cert_sign", "crl_sign"})
    return {
        # S1: Org CA, boot.
        "org_ca_boot": Profile(
            subject=(("CN", f"{org} CA"), ("O", org)), bc=(True, 1), key_usage=ca_bits, eku=None,
            san=None, san_critical=False, ski=True, aki=False, validity=5475 * DAY, skew=FIVE_MIN,
        ),
        # S2: Org CA, dashboard (RSA-4096).
        "org_ca_dashboard": Profile(
            subject=(("CN", f"{org} CA"), ("O", org)), bc=(True, 1),
            key_usage=ca_bits | {"digital_signature"}, eku=None, san=None, san_critical=False,
            ski=False, aki=False, validity=3650 * DAY, skew=NO_SKEW,
        ),
        # S3, S4: Mastio Intermediate.
        "intermediate": Profile(
            subject=(("CN", f"{org} Mastio CA"), ("O", org)), bc=(True, 0), key_usage=ca_bits, eku=None,
            san=None, san_critical=False, ski=True, aki=False, validity=1825 * DAY, skew=FIVE_MIN,
        ),
        # S6-S8: Mastio leaf.
        "mastio_leaf": Profile(
            subject=(("CN", f"proxy:{org}"), ("O", org)), bc=(False, None), key_usage=None, eku=None,
            san=(("uri", f"spiffe://{td}/proxy/{org}"),), san_critical=False, ski=False, aki=False,
            validity=365 * DAY, skew=FIVE_MIN,
        ),
        # S9: nginx server certificate (SANs filled in by the test).
        "nginx": Profile(
            subject=(), bc=(False, None), key_usage=frozenset({"digital_signature", "key_encipherment"}),
            eku=(ExtendedKeyUsageOID.SERVER_AUTH,), san=(), san_critical=False, ski=True, aki=True,
            validity=90 * DAY, skew=FIVE_MIN,
        ),
        # S10, S11: agent.
        "agent": Profile(
            subject=(("CN", f"{org}::agent-1"), ("O", org)), bc=None, key_usage=None, eku=None,
            san=(("uri", f"spiffe://{td}/{org}/agent-1"),), san_critical=False, ski=False, aki=False,
            validity=365 * DAY, skew=NO_SKEW,
        ),
        # S12: user principal.
        "principal": Profile(
            subject=(), bc=(False, None), key_usage=frozenset({"digital_signature"}),
            eku=(ExtendedKeyUsageOID.CLIENT_AUTH,), san=(("uri", f"spiffe://{td}/{org}/user/alice"),),
            san_critical=False, ski=False, aki=False, validity=dt.timedelta(hours=1), skew=FIVE_MIN,
        ),
    }


MASTIO = _mastio_profiles()

# The Go x509 package cannot encode a leaf without basicConstraints, SKI
# and AKI in the plugin's template: these fields are the plugin's, listed
# as deviations D1-D3 in test_sites.py.
PLUGIN_LEAF = dict(bc=(False, None), ski=True, aki=True)


def with_(p: Profile, **changes) -> Profile:
    """The profile with some fields changed (a documented deviation)."""
    return replace(p, **changes)


def _general_names(gns) -> tuple[tuple[str, str], ...]:
    out = []
    for g in gns:
        if isinstance(g, x509.DNSName):
            out.append(("dns", g.value))
        elif isinstance(g, x509.IPAddress):
            out.append(("ip", str(g.value)))
        elif isinstance(g, x509.UniformResourceIdentifier):
            out.append(("uri", g.value))
        elif isinstance(g, x509.RFC822Name):
            out.append(("email", g.value))
        else:  # pragma: no cover
            out.append(("other", repr(g)))
    return tuple(out)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def assert_profile(
    cert: x509.Certificate,
    p: Profile,
    *,
    issuer: x509.Certificate | None,
    issued_at: dt.datetime,
    public_key=None,
    tolerance: dt.timedelta = dt.timedelta(seconds=90),
) -> None:
    """Assert every field of cert against p.

    issuer None means self-signed. issued_at is a naive UTC time taken
    just before the request. public_key, when given, must be cert's key.
    """
    assert cert.version == x509.Version.v3
    assert 0 < cert.serial_number < 1 << 159, "serial must be positive and fit 20 octets"

    # Subject: CN then O, one RDN each, UTF8String -- byte for byte as Mastio writes it.
    iss_der, subj_der = tbs_names(cert)
    want = [[(OID_DER[a], UTF8STRING, v.encode("utf-8"))] for a, v in p.subject]
    assert rdns(subj_der) == want, f"subject RDNs {rdns(subj_der)} != {want}"
    assert subj_der == name_der(p.subject)

    # Issuer: the issuing CA's subject, byte for byte, and its key signed this.
    if issuer is None:
        assert iss_der == subj_der, "a self-signed CA is its own issuer"
        verify_signed_by(cert, cert.public_key())
    else:
        assert iss_der == subject_der(issuer)
        verify_signed_by(cert, issuer.public_key())

    if public_key is not None:
        assert spki_der(cert.public_key()) == spki_der(public_key), "the certificate must carry the key sent"

    exts = {e.oid: e for e in cert.extensions}
    expected_oids = set()

    if p.bc is None:
        assert ExtensionOID.BASIC_CONSTRAINTS not in exts
    else:
        expected_oids.add(ExtensionOID.BASIC_CONSTRAINTS)
        bc = exts[ExtensionOID.BASIC_CONSTRAINTS]
        assert bc.critical, "basicConstraints must be critical"
        assert (bc.value.ca, bc.value.path_length) == p.bc

    if p.key_usage is None:
        assert ExtensionOID.KEY_USAGE not in exts
    else:
        expected_oids.add(ExtensionOID.KEY_USAGE)
        ku = exts[ExtensionOID.KEY_USAGE]
        assert ku.critical, "keyUsage must be critical"
        bits = {n for n in KU_NAMES if getattr(ku.value, n)}
        assert bits == set(p.key_usage)
        if ku.value.key_agreement:  # pragma: no cover
            assert not ku.value.encipher_only and not ku.value.decipher_only

    if p.eku is None:
        assert ExtensionOID.EXTENDED_KEY_USAGE not in exts
    else:
        expected_oids.add(ExtensionOID.EXTENDED_KEY_USAGE)
        eku = exts[ExtensionOID.EXTENDED_KEY_USAGE]
        assert not eku.critical
        assert tuple(eku.value) == p.eku

    if p.san is None:
        assert ExtensionOID.SUBJECT_ALTERNATIVE_NAME not in exts
    else:
        expected_oids.add(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        san = exts[ExtensionOID.SUBJECT_ALTERNATIVE_NAME]
        assert san.critical == p.san_critical, f"SAN critical={san.critical}, want {p.san_critical}"
        assert _general_names(san.value) == p.san

    if p.ski:
        expected_oids.add(ExtensionOID.SUBJECT_KEY_IDENTIFIER)
        ski = exts[ExtensionOID.SUBJECT_KEY_IDENTIFIER]
        assert not ski.critical
        assert ski.value.digest == ski_sha256_truncated(cert.public_key())
    else:
        assert ExtensionOID.SUBJECT_KEY_IDENTIFIER not in exts

    if p.aki:
        expected_oids.add(ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
        aki = exts[ExtensionOID.AUTHORITY_KEY_IDENTIFIER]
        assert not aki.critical
        assert aki.value.authority_cert_issuer is None and aki.value.authority_cert_serial_number is None
        assert issuer is not None
        issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        assert aki.value.key_identifier == issuer_ski
    else:
        assert ExtensionOID.AUTHORITY_KEY_IDENTIFIER not in exts

    assert set(exts) == expected_oids, f"unexpected extensions {set(exts) - expected_oids}"

    # Validity (UTCTime has whole seconds).
    nb, na = cert.not_valid_before, cert.not_valid_after
    assert abs((issued_at - nb) - p.skew) <= tolerance, f"notBefore {nb}: want issue time - {p.skew}"
    assert abs((na - issued_at) - p.validity) <= tolerance, f"notAfter {na}: want issue time + {p.validity}"


def reference_certificate(p: Profile, *, issuer_name: x509.Name | None = None, key=None) -> x509.Certificate:
    """A certificate built to p the way Mastio builds it (pyca CertificateBuilder, library defaults)."""
    key = key or ec_key()
    subject = x509.Name([x509.NameAttribute(_NAME_OID[a], v) for a, v in p.subject])
    now = utcnow()
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name or subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - p.skew)
        .not_valid_after(now + p.validity)
    )
    if p.bc is not None:
        b = b.add_extension(x509.BasicConstraints(ca=p.bc[0], path_length=p.bc[1]), critical=True)
    if p.key_usage is not None:
        b = b.add_extension(x509.KeyUsage(**{n: n in p.key_usage for n in KU_NAMES},
                                          encipher_only=False, decipher_only=False), critical=True)
    if p.eku is not None:
        b = b.add_extension(x509.ExtendedKeyUsage(list(p.eku)), critical=False)
    if p.san:
        gns = []
        for kind, v in p.san:
            gns.append({"dns": x509.DNSName, "uri": x509.UniformResourceIdentifier}[kind](v) if kind != "ip"
                       else x509.IPAddress(ipaddress.ip_address(v)))
        b = b.add_extension(x509.SubjectAlternativeName(gns), critical=p.san_critical)
    return b.sign(key, hashes.SHA256())
