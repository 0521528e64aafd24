"""Revocation through the async client against a real Vault: revoke an agent
certificate (by PEM and by serial), idempotency, the refusals, and the CRL
that crl_pem() serves, read with ``cryptography`` as a relying party would."""

from __future__ import annotations

import datetime as dt
import secrets

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID

from _pki import MASTIO, ORG, ec_key, public_pem, reference_certificate, utcnow
from conftest import client_kwargs
from test_sites import PLUGIN, current

import mastio_ca
from mastio_ca import InvalidRequest, NotFound, PolicyRefused, Revocation

pytestmark = pytest.mark.asyncio

# revocation_time is RFC 3339 to the second (truncated), as in the CRL.
CLOCK = dt.timedelta(seconds=2)


def _utc(d: dt.datetime) -> dt.datetime:
    return d.replace(tzinfo=dt.timezone.utc)


def key_id(cert: x509.Certificate) -> str:
    """The plugin's issuer id: the CA's subject key identifier in lowercase hex."""
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()


def load_crl(pem: str) -> x509.CertificateRevocationList:
    assert pem.startswith("-----BEGIN X509 CRL-----") and pem.rstrip().endswith("-----END X509 CRL-----")
    return x509.load_pem_x509_crl(pem.encode("ascii"))


def crl_number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_oid(ExtensionOID.CRL_NUMBER).value.crl_number


def entry_reason(entry: x509.RevokedCertificate) -> x509.ReasonFlags:
    return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason


async def agent(ca: mastio_ca.AsyncMastioCA, name: str = "agent-1") -> mastio_ca.SignedCertificate:
    return await ca.sign_public_key("agent", public_pem(ec_key()), name=name)


async def test_revoke_agent_certificate(aca):
    """Mastio's revoke flow: the agent's certificate PEM and a reason; the CRL lists it at once."""
    root, inter = await current(aca)
    leaf = await agent(aca)
    other = await agent(aca, "agent-2")
    before = crl_number(load_crl(await aca.crl_pem()))
    t0 = _utc(utcnow())
    rev = await aca.revoke(leaf.certificate, reason="keyCompromise")
    t1 = _utc(utcnow())
    assert isinstance(rev, Revocation)
    assert rev.serial_number == leaf.serial_number
    assert rev.reason == "keyCompromise"
    assert rev.not_after == leaf.not_after == _utc(leaf.x509.not_valid_after)
    assert rev.issuer_id == key_id(inter.x509) != key_id(root.x509)
    assert rev.already_revoked is False
    assert isinstance(rev.crl_number, int) and rev.crl_number > before
    assert rev.revocation_time.tzinfo is not None
    assert t0 - CLOCK <= rev.revocation_time <= t1 + CLOCK

    crl = load_crl(await aca.crl_pem())
    assert crl.is_signature_valid(inter.x509.public_key())  # signed by the intermediate, inside Vault
    assert crl.issuer == inter.x509.subject
    assert crl_number(crl) == rev.crl_number
    entry = crl.get_revoked_certificate_by_serial_number(leaf.x509.serial_number)
    assert entry is not None, "the revoked serial is not in crl/pem"
    assert _utc(entry.revocation_date) == rev.revocation_time
    assert entry_reason(entry) == x509.ReasonFlags.key_compromise
    assert crl.get_revoked_certificate_by_serial_number(other.x509.serial_number) is None

    # Signing is unaffected; the mount still issues.
    assert (await agent(aca, "agent-3")).issuing_ca == inter.certificate


async def test_revoke_is_idempotent(aca):
    """A second revoke changes nothing: the first time and reason, already_revoked=True."""
    leaf = await agent(aca)
    first = await aca.revoke(leaf.certificate, reason="cessation_of_operation")  # snake_case, sent as the RFC name
    assert first.reason == "cessationOfOperation" and not first.already_revoked
    again = await aca.revoke(leaf.certificate, reason="keyCompromise")
    assert again.already_revoked is True
    assert again.revocation_time == first.revocation_time
    assert again.reason == first.reason == "cessationOfOperation"
    assert (again.serial_number, again.not_after, again.issuer_id) == (first.serial_number, first.not_after, first.issuer_id)
    assert again.crl_number >= first.crl_number
    by_serial = await aca.revoke_serial(leaf.serial_number, "intermediate-ca", leaf.not_after, reason="superseded")
    assert by_serial.already_revoked and by_serial.revocation_time == first.revocation_time
    assert by_serial.reason == "cessationOfOperation"
    crl = load_crl(await aca.crl_pem())
    entries = [e for e in crl if e.serial_number == leaf.x509.serial_number]
    assert len(entries) == 1 and entry_reason(entries[0]) == x509.ReasonFlags.cessation_of_operation


async def test_revoke_by_serial(aca):
    """revoke_serial: serial (hex as sign answered it, or an int), issuer, NotAfter."""
    _, inter = await current(aca)
    a, b, c = await agent(aca, "a"), await agent(aca, "b"), await agent(aca, "c")
    rev_a = await aca.revoke_serial(a.serial_number, "intermediate-ca", a.not_after, reason="superseded")
    assert (rev_a.serial_number, rev_a.reason, rev_a.already_revoked) == (a.serial_number, "superseded", False)
    assert rev_a.not_after == a.not_after and rev_a.issuer_id == key_id(inter.x509)
    # By the issuer's key id (Revocation.issuer_id) and the serial as an int, default reason.
    rev_b = await aca.revoke_serial(b.x509.serial_number, rev_a.issuer_id, b.not_after)
    assert rev_b.serial_number == b.serial_number and rev_b.reason == "unspecified"
    assert rev_b.crl_number > rev_a.crl_number
    crl = load_crl(await aca.crl_pem())
    assert crl.is_signature_valid(inter.x509.public_key())
    for leaf, reason in ((a, x509.ReasonFlags.superseded), (b, x509.ReasonFlags.unspecified)):
        entry = crl.get_revoked_certificate_by_serial_number(leaf.x509.serial_number)
        assert entry is not None
        # unspecified may be written without a reasonCode extension (RFC 5280 5.3.1).
        try:
            got = entry_reason(entry)
        except x509.ExtensionNotFound:
            got = x509.ReasonFlags.unspecified
        assert got == reason
    assert crl.get_revoked_certificate_by_serial_number(c.x509.serial_number) is None
    # An issuer this mount does not have is the plugin's 404.
    with pytest.raises(NotFound) as e:
        await aca.revoke_serial(c.serial_number, "ab" * 20, c.not_after)
    assert (e.value.status, e.value.operation) == (404, "revoke")
    # A NotAfter in the past: nothing to revoke (400).
    with pytest.raises(InvalidRequest) as e:
        await aca.revoke_serial(c.serial_number, "intermediate-ca", dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))
    assert e.value.status == 400


async def test_bad_reason_is_refused_before_any_request(vault, mastio_mount):
    seen: list[httpx.Request] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request)

    async with mastio_ca.AsyncMastioCA(**client_kwargs(vault, mastio_mount)) as ca:
        ca._http.event_hooks["request"].append(hook)
        leaf = await agent(ca)
        assert len(seen) == 1
        for bad in ("compromised", "removeFromCRL", "KEYCOMPROMISE", "6", ""):
            with pytest.raises(InvalidRequest, match="RFC 5280") as e:
                await ca.revoke(leaf.certificate, reason=bad)
            assert e.value.status is None
            with pytest.raises(InvalidRequest, match="RFC 5280"):
                await ca.revoke_serial(leaf.serial_number, "intermediate-ca", leaf.not_after, reason=bad)
        assert len(seen) == 1, "a bad reason reached Vault"
        crl = load_crl(await ca.crl_pem())
        assert crl.get_revoked_certificate_by_serial_number(leaf.x509.serial_number) is None


async def test_foreign_certificate_is_refused_by_the_plugin(vault, aca):
    """Not issued by this mount (same issuer name, another key; or another mount's): 400, InvalidRequest."""
    root, inter = await current(aca)
    forged = reference_certificate(PLUGIN["agent"], issuer_name=inter.x509.subject)
    forged_pem = forged.public_bytes(Encoding.PEM).decode()
    with pytest.raises(InvalidRequest) as e:
        await aca.revoke(forged_pem, reason="keyCompromise")
    assert (e.value.status, e.value.operation) == (400, "revoke")
    assert not isinstance(e.value, PolicyRefused)
    assert any("not issued by this mount" in m for m in e.value.messages)
    assert "BEGIN CERTIFICATE" not in str(e.value)

    # A leaf of another mount (its own Org CA and intermediate, same org).
    other = "mastio-ca-other-" + secrets.token_hex(4)
    vault.enable(other)
    try:
        vault.call("POST", f"{other}/generate", {"org_id": ORG})
        vault.call("POST", f"{other}/intermediate/generate", {})
        async with mastio_ca.AsyncMastioCA(**client_kwargs(vault, other)) as oca:
            theirs = await agent(oca)
        with pytest.raises(InvalidRequest) as e:
            await aca.revoke(theirs.certificate)
        assert e.value.status == 400
    finally:
        vault.disable(other)

    # The mount's own CAs are not revoked here (rotate instead).
    for ca_pem in (inter.certificate, root.certificate):
        with pytest.raises(InvalidRequest) as e:
            await aca.revoke(ca_pem, reason="cACompromise")
        assert e.value.status == 400 and any("own CAs" in m for m in e.value.messages)
    # Not a certificate at all.
    with pytest.raises(InvalidRequest) as e:
        await aca.revoke(public_pem(ec_key()))
    assert e.value.status == 400
    # Nothing of the above reached the CRL.
    crl = load_crl(await aca.crl_pem())
    assert len(list(crl)) == 0


async def test_crl_pem_needs_no_token(vault, aca):
    leaf = await agent(aca)
    rev = await aca.revoke(leaf.certificate, reason="privilegeWithdrawn")
    async with mastio_ca.AsyncMastioCA(**client_kwargs(vault, aca.mount, token="")) as anon:
        pem = await anon.crl_pem()
        with pytest.raises(mastio_ca.PermissionDenied):  # revoking does need one
            await anon.revoke(leaf.certificate)
    crl = load_crl(pem)
    entry = crl.get_revoked_certificate_by_serial_number(leaf.x509.serial_number)
    assert entry is not None and entry_reason(entry) == x509.ReasonFlags.privilege_withdrawn
    assert crl_number(crl) == rev.crl_number


async def test_crl_pem_on_an_empty_mount_is_not_found(aca_empty):
    with pytest.raises(NotFound) as e:
        await aca_empty.crl_pem()
    assert (e.value.status, e.value.operation) == (404, "crl")
    with pytest.raises(NotFound):
        await aca_empty.revoke(reference_certificate(MASTIO["agent"]).public_bytes(Encoding.PEM))
