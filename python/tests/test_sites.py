"""One test per Mastio signing site (shared/reference/mastio-signing-sites.md),
driven through the async client against a real Vault, every field of the
result checked with ``cryptography`` against the reference profile.

Each test starts from the reference profile (``_pki.MASTIO``) and changes
only the fields where the plugin deliberately differs; those deviations are:

D1  Leaves always carry basicConstraints CA:false, critical. The reference
    agent profile (S10, S11) has no basicConstraints at all.
D2  The agent role keeps keyUsage digitalSignature (critical) and EKU
    clientAuth; the reference agent has neither.
D3  Every leaf carries SKI and AKI (key identifier only, = the issuer's
    SKI); the reference Mastio leaf, agent and principal have neither.
D4  The agent's notBefore is now - 5 min (the role's not_before_skew);
    the reference agent starts "now", without skew.
D5  SKIs are SHA-256 of the subjectPublicKey truncated to 160 bits (RFC
    7093 section 2, method 1), not pyca's from_public_key (SHA-1).
D6  The intermediate (S3, S4) carries AKI = the Org CA's SKI; the
    reference has SKI only.
D7  The RSA-4096 Org CA (S2, S13) has keyUsage keyCertSign+cRLSign only
    (no digitalSignature), an SKI, and notBefore now - 5 min; the reference
    dashboard CA has digitalSignature too, no SKI, and notBefore now.
D8  The principal (S12) has an empty subject, so its SAN is critical, as
    RFC 5280 section 4.2.1.6 requires; the reference marks it non-critical.
D9  Extensions are in Go's encoding order, not Mastio's (not asserted).
D10 Serials are 128 random bits (Mastio: up to 159 bits; S13/S14 16 bytes).
D11 S13: Mastio keeps the intermediate the old Root signed; the plugin
    refuses to sign with it (422, CAStateError) until an intermediate is
    minted under the new Org CA (intermediate/rotate, which also proves
    continuity from the old one, or intermediate/generate with cas).
D12 S14: a re-signed agent certificate is issued by that new intermediate,
    not by the new Root itself, and its validity restarts (365 days)
    instead of keeping the old dates. Subject, SAN, key and every other
    extension equal the old certificate's (both come from the agent role);
    AKI is the new issuer's, as in Mastio.
    S13's "validity to the old CA's notAfter" is ttl = old notAfter - now.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import re

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from _pki import (
    DAY,
    FIVE_MIN,
    MASTIO,
    ORG,
    PLUGIN_LEAF,
    TD,
    assert_profile,
    csr_pem,
    ec_key,
    issuer_der,
    public_pem,
    reference_certificate,
    spki_der,
    subject_der,
    utcnow,
    verify_signed_by,
    with_,
)
from conftest import NGINX_DNS

import mastio_ca
from mastio_ca import CAStateError, Conflict, PublicKeyRequest, Rotation, verify_continuity

pytestmark = pytest.mark.asyncio

CA_BITS = frozenset({"key_cert_sign", "crl_sign"})
# The plugin's version of each reference profile (deviations D1-D8).
PLUGIN = {
    "org_ca_boot": MASTIO["org_ca_boot"],
    "org_ca_dashboard": with_(MASTIO["org_ca_dashboard"], key_usage=CA_BITS, ski=True, skew=FIVE_MIN),  # D7
    "intermediate": with_(MASTIO["intermediate"], aki=True),  # D6
    "mastio_leaf": with_(MASTIO["mastio_leaf"], **PLUGIN_LEAF),  # D3
    "nginx": MASTIO["nginx"],
    "agent": with_(
        MASTIO["agent"], **PLUGIN_LEAF,  # D1, D3
        key_usage=frozenset({"digital_signature"}), eku=(ExtendedKeyUsageOID.CLIENT_AUTH,),  # D2
        skew=FIVE_MIN,  # D4
    ),
    "principal": with_(MASTIO["principal"], **PLUGIN_LEAF, san_critical=True),  # D3, D8
}

MASTIO_LEAF_ID = f"spiffe://{TD}/proxy/{ORG}"


def _serial_hex(n: int) -> str:
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return ":".join(f"{c:02x}" for c in b)


def _utc(d: dt.datetime) -> dt.datetime:
    return d.replace(tzinfo=dt.timezone.utc)


def check_ca_fields(ca: mastio_ca.CACertificate, key_type: str, key_bits: int, chain_len: int) -> None:
    """The plugin's metadata agrees with the certificate it describes."""
    cert = ca.x509
    der = cert.public_bytes(serialization.Encoding.DER)
    assert ca.fingerprint_sha256 == hashlib.sha256(der).hexdigest()
    assert ca.serial_number == _serial_hex(cert.serial_number)
    assert ca.not_before == _utc(cert.not_valid_before)
    assert ca.not_after == _utc(cert.not_valid_after)
    assert (ca.key_type, ca.key_bits) == (key_type, key_bits)
    assert ca.source == "generated"
    assert ca.kv_export is False
    assert ca.version >= 1
    assert len(ca.ca_chain) == chain_len and ca.ca_chain[0] == ca.certificate
    assert ca.chain_x509[0] == cert


def check_ec_p256(cert: x509.Certificate) -> None:
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)


def check_leaf_fields(leaf: mastio_ca.SignedCertificate, issuer: mastio_ca.Intermediate, root_pem: str,
                      spiffe_id: str) -> None:
    """The sign answer's metadata and chain: leaf then the intermediate then the Org CA."""
    cert = leaf.x509
    assert leaf.serial_number == _serial_hex(cert.serial_number)
    assert leaf.not_after == _utc(cert.not_valid_after)
    assert leaf.spiffe_id == spiffe_id
    assert leaf.issuing_ca == issuer.certificate
    assert leaf.ca_chain == (issuer.certificate, root_pem)
    assert leaf.issuing_ca_x509 == issuer.x509
    both = _split_pems(leaf.pem_with_issuer)
    assert [c.serial_number for c in both] == [cert.serial_number, issuer.x509.serial_number]
    verify_signed_by(issuer.x509, x509.load_pem_x509_certificate(root_pem.encode()).public_key())


def _split_pems(text: str) -> list[x509.Certificate]:
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S)
    return [x509.load_pem_x509_certificate(b.encode()) for b in blocks]


async def current(ca: mastio_ca.AsyncMastioCA) -> tuple[mastio_ca.CACertificate, mastio_ca.Intermediate]:
    return await ca.org_ca(), await ca.intermediate()


# ---- the Org CA ----------------------------------------------------------------


async def test_s1_generate_org_ca_at_boot(aca_empty):
    """S1: AgentManager.generate_org_ca -> generate (EC P-256, 15 years, pathLen 1)."""
    t0 = utcnow()
    ca = await aca_empty.generate(org_id=ORG, key_type="ec")
    assert_profile(ca.x509, PLUGIN["org_ca_boot"], issuer=None, issued_at=t0)
    check_ec_p256(ca.x509)
    check_ca_fields(ca, "ec", 256, chain_len=1)
    assert ca.version == 1
    # DN equality with a certificate pyca builds to Mastio's S1 profile.
    ref = reference_certificate(MASTIO["org_ca_boot"])
    assert subject_der(ca.x509) == subject_der(ref) == issuer_der(ref)
    # What Mastio's readers get back (pc.org_ca_cert).
    assert await aca_empty.org_ca() == ca


async def test_s2_dashboard_org_ca_rsa4096_replaced_with_cas(aca_empty):
    """S2: the dashboard's RSA-4096 Org CA (setup, rotate-ca): generate with cas, admin only."""
    boot = await aca_empty.generate(org_id=ORG)
    with pytest.raises(Conflict):
        await aca_empty.generate(org_id=ORG, key_type="rsa", key_bits=4096, ttl="87600h")
    t0 = utcnow()
    ca = await aca_empty.generate(org_id=ORG, key_type="rsa", key_bits=4096, ttl="87600h", cas=boot.version)
    assert_profile(ca.x509, PLUGIN["org_ca_dashboard"], issuer=None, issued_at=t0)
    key = ca.x509.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 4096 and key.public_numbers().e == 65537
    # PKCS#1 v1.5 with SHA-256: the only RSA signature Mastio's chain check accepts.
    assert ca.x509.signature_algorithm_oid == x509.SignatureAlgorithmOID.RSA_WITH_SHA256
    check_ca_fields(ca, "rsa", 4096, chain_len=1)
    assert ca.version == boot.version + 1
    assert (await aca_empty.org_ca()).certificate == ca.certificate


async def test_s13_migration_org_ca_keeps_subject_and_end_date(aca):
    """S13: OrgCAPathLenFix: an RSA-4096 Org CA with the old subject, valid to the old CA's notAfter."""
    old_root, old_int = await current(aca)
    t0 = utcnow()
    remaining = int((old_root.x509.not_valid_after - t0).total_seconds())
    old_cn = old_root.x509.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    ca = await aca.generate(org_id=ORG, common_name=old_cn, key_type="rsa", key_bits=4096, ttl=remaining,
                            cas=old_root.version)
    profile = with_(PLUGIN["org_ca_dashboard"], validity=dt.timedelta(seconds=remaining))  # D7
    assert_profile(ca.x509, profile, issuer=None, issued_at=t0)
    assert subject_der(ca.x509) == subject_der(old_root.x509)
    assert abs(ca.x509.not_valid_after - old_root.x509.not_valid_after) <= dt.timedelta(seconds=5)
    # D11: the intermediate the old Root signed no longer signs.
    with pytest.raises(CAStateError) as e:
        await aca.sign_public_key("agent", public_pem(ec_key()), name="agent-1")
    assert e.value.status == 422 and e.value.operation == "sign-public-key"
    assert (await aca.intermediate()).certificate == old_int.certificate
    # rotate_intermediate mints the next one under the new Org CA, proven by the old key.
    t1 = utcnow()
    rot = await aca.rotate_intermediate(grace_days=14)
    assert_profile(rot.x509, PLUGIN["intermediate"], issuer=ca.x509, issued_at=t1)
    assert rot.previous == old_int.certificate
    assert verify_continuity(old_int.certificate, rot.certificate, rot.continuity_proof)
    leaf = await aca.sign_public_key("agent", public_pem(ec_key()), name="agent-1")
    assert leaf.ca_chain == (rot.certificate, ca.certificate)


async def test_s14_resign_agents_after_new_org_ca_batch(aca):
    """S14: _resign_leaf: every agent certificate re-signed for its existing key after a new Root."""
    keys = {f"agent-{i}": ec_key() for i in range(3)}
    old = {}
    for name, key in keys.items():
        old[name] = (await aca.sign_public_key("agent", public_pem(key), name=name)).x509
    root, inter = await current(aca)
    new_root = await aca.generate(org_id=ORG, key_type="rsa", key_bits=4096, cas=root.version)
    new_int = await aca.generate_intermediate(cas=inter.version)  # D11
    assert issuer_der(new_int.x509) == subject_der(new_root.x509)
    verify_signed_by(new_int.x509, new_root.x509.public_key())

    t0 = utcnow()
    batch = await aca.sign_public_key_batch(
        "agent",
        [PublicKeyRequest(public_pem(k), name=n) for n, k in keys.items()][:2]
        + [{"public_key": public_pem(keys["agent-2"]), "name": "agent-2"}],
    )
    assert batch.failed == 0 and len(batch) == 3
    assert [i.index for i in batch] == [0, 1, 2] and all(i.ok and i.error is None for i in batch)
    assert batch.issuing_ca == new_int.certificate
    assert batch.ca_chain == (new_int.certificate, new_root.certificate)
    for item, (name, key) in zip(batch, keys.items()):
        leaf = item.certificate
        cert = leaf.x509
        profile = with_(PLUGIN["agent"], subject=(("CN", f"{ORG}::{name}"), ("O", ORG)),
                        san=(("uri", f"spiffe://{TD}/{ORG}/{name}"),))
        assert_profile(cert, profile, issuer=new_int.x509, issued_at=t0, public_key=key.public_key())  # D12
        check_leaf_fields(leaf, new_int, new_root.certificate, f"spiffe://{TD}/{ORG}/{name}")
        was = old[name]
        assert subject_der(cert) == subject_der(was)
        assert spki_der(cert.public_key()) == spki_der(was.public_key())
        for ext in was.extensions:  # everything copied but the AKI
            if ext.oid != x509.ExtensionOID.AUTHORITY_KEY_IDENTIFIER:
                assert cert.extensions.get_extension_for_oid(ext.oid) == ext
        assert cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value != \
            was.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value


# ---- the intermediate -------------------------------------------------------------


async def test_s3_mint_intermediate(aca_empty):
    """S3: _mint_mastio_ca -> intermediate/generate, signed by the Org CA inside Vault."""
    root = await aca_empty.generate(org_id=ORG)
    t0 = utcnow()
    inter = await aca_empty.generate_intermediate()
    assert_profile(inter.x509, PLUGIN["intermediate"], issuer=root.x509, issued_at=t0)
    check_ec_p256(inter.x509)
    check_ca_fields(inter, "ec", 256, chain_len=2)
    assert inter.ca_chain == (inter.certificate, root.certificate)
    assert inter.bundle == (inter.certificate,)
    assert inter.previous is None and inter.retired == () and inter.continuity_proof is None
    ref = reference_certificate(MASTIO["intermediate"], issuer_name=root.x509.subject)
    assert subject_der(inter.x509) == subject_der(ref)
    assert issuer_der(inter.x509) == issuer_der(ref) == subject_der(root.x509)
    # Race-safe across Mastio's workers: create-only, a loser gets Conflict and reads the winner's.
    with pytest.raises(Conflict):
        await aca_empty.generate_intermediate()
    assert await aca_empty.intermediate() == inter


async def test_s4_rotate_intermediate(aca):
    """S4: _rotate_intermediate_locked -> intermediate/rotate (grace_days), stored, old one in grace."""
    root, before = await current(aca)
    t0 = utcnow()
    rot = await aca.rotate_intermediate(grace_days=14)
    assert isinstance(rot, Rotation)
    assert_profile(rot.x509, PLUGIN["intermediate"], issuer=root.x509, issued_at=t0)
    check_ca_fields(rot, "ec", 256, chain_len=2)
    assert rot.certificate != before.certificate
    assert rot.dry_run is False and rot.grace_days == 14
    assert rot.old_intermediate_cn == rot.new_intermediate_cn == f"{ORG} Mastio CA"
    assert rot.mastio_response() == {
        "old_intermediate_cn": f"{ORG} Mastio CA", "new_intermediate_cn": f"{ORG} Mastio CA",
        "grace_days": 14, "dry_run": False, "continuity_proof": rot.continuity_proof,
    }
    assert rot.previous == before.certificate
    assert abs(rot.previous_grace_until - _utc(t0 + 14 * DAY)) <= dt.timedelta(seconds=90)
    assert rot.bundle == (rot.certificate, before.certificate)
    assert rot.version > before.version
    # Stored: intermediate/cert now serves the new one, the old one in its grace.
    after = await aca.intermediate()
    assert after.certificate == rot.certificate and after.version == rot.version
    assert after.previous == before.certificate and after.continuity_proof == rot.continuity_proof
    assert after.bundle == (rot.certificate, before.certificate)
    assert [r.certificate for r in after.retired] == [before.certificate]
    assert after.retired[0].grace_until == after.previous_grace_until
    assert after.retired[0].continuity_proof == rot.continuity_proof
    # And signs from now on.
    leaf = await aca.sign_public_key("agent", public_pem(ec_key()), name="agent-1")
    assert leaf.issuing_ca == rot.certificate


async def test_s4_rotate_intermediate_dry_run_stores_nothing(aca):
    """S4 with dry_run: the Root signs the would-be intermediate and proof; nothing is stored."""
    root, before = await current(aca)
    t0 = utcnow()
    rot = await aca.rotate_intermediate(grace_days=3, dry_run=True)
    assert rot.dry_run is True and rot.grace_days == 3
    assert rot.old_intermediate_cn == rot.new_intermediate_cn == f"{ORG} Mastio CA"
    assert rot.certificate != before.certificate
    assert_profile(rot.x509, PLUGIN["intermediate"], issuer=root.x509, issued_at=t0)
    assert verify_continuity(before.certificate, rot.certificate, rot.continuity_proof)
    after = await aca.intermediate()
    assert after == before  # unchanged: same certificate, version, no previous, same bundle
    assert after.previous is None and after.bundle == (before.certificate,)
    leaf = await aca.sign_public_key("agent", public_pem(ec_key()), name="agent-1")
    assert leaf.issuing_ca == before.certificate


async def test_s5_continuity_proof(aca):
    """S5: the old intermediate key's ECDSA-SHA256 over the new certificate's DER, base64url, no padding."""
    _, before = await current(aca)
    rot = await aca.rotate_intermediate(grace_days=14)
    proof = rot.continuity_proof
    assert proof and re.fullmatch(r"[A-Za-z0-9_-]+", proof), "base64url without padding"
    sig = base64.urlsafe_b64decode(proof + "=" * (-len(proof) % 4))
    decode_dss_signature(sig)  # a DER ECDSA signature
    new_der = rot.x509.public_bytes(serialization.Encoding.DER)
    old_key = before.x509.public_key()
    old_key.verify(sig, new_der, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):  # over anything else it fails
        old_key.verify(sig, before.x509.public_bytes(serialization.Encoding.DER), ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):  # and the new key did not make it
        rot.x509.public_key().verify(sig, new_der, ec.ECDSA(hashes.SHA256()))
    assert verify_continuity(before.certificate, rot.certificate, proof)
    assert not verify_continuity(before.certificate, before.certificate, proof)
    assert not verify_continuity(before.certificate, rot.certificate, proof + "=")


# ---- leaves ---------------------------------------------------------------------------


async def _mastio_leaf(aca, key) -> mastio_ca.SignedCertificate:
    return await aca.sign_public_key("mastio-leaf", public_pem(key), spiffe_id=MASTIO_LEAF_ID)


async def test_s6_reissue_mastio_leaf_under_new_intermediate(aca):
    """S6: _reissue_mastio_leaf_under: after a real rotation, the Mastio leaf under the NEW intermediate."""
    root, _ = await current(aca)
    rot = await aca.rotate_intermediate(grace_days=14)
    new_int = await aca.intermediate()
    key = ec_key()
    t0 = utcnow()
    leaf = await _mastio_leaf(aca, key)
    assert_profile(leaf.x509, PLUGIN["mastio_leaf"], issuer=rot.x509, issued_at=t0, public_key=key.public_key())
    check_leaf_fields(leaf, new_int, root.certificate, MASTIO_LEAF_ID)


async def test_s7_mint_mastio_leaf_at_boot(aca):
    """S7: _mint_mastio_leaf: Mastio's key, sign-public-key/mastio-leaf with its SPIFFE ID."""
    root, inter = await current(aca)
    key = ec_key()
    t0 = utcnow()
    leaf = await _mastio_leaf(aca, key)
    assert_profile(leaf.x509, PLUGIN["mastio_leaf"], issuer=inter.x509, issued_at=t0, public_key=key.public_key())
    check_leaf_fields(leaf, inter, root.certificate, MASTIO_LEAF_ID)
    ref = reference_certificate(MASTIO["mastio_leaf"], issuer_name=inter.x509.subject)
    assert subject_der(leaf.x509) == subject_der(ref)
    assert issuer_der(leaf.x509) == issuer_der(ref)


async def test_s8_rotate_mastio_key(aca):
    """S8: _rotate_locked: a new Mastio leaf key, same profile; the old leaf stays valid."""
    root, inter = await current(aca)
    old_key, new_key = ec_key(), ec_key()
    old = await _mastio_leaf(aca, old_key)
    t0 = utcnow()
    new = await _mastio_leaf(aca, new_key)
    assert_profile(new.x509, PLUGIN["mastio_leaf"], issuer=inter.x509, issued_at=t0, public_key=new_key.public_key())
    check_leaf_fields(new, inter, root.certificate, MASTIO_LEAF_ID)
    assert new.serial_number != old.serial_number
    assert subject_der(new.x509) == subject_der(old.x509)
    assert spki_der(new.x509.public_key()) != spki_der(old.x509.public_key())
    verify_signed_by(old.x509, inter.x509.public_key())


async def test_s9_nginx_server_certificate_from_csr(aca):
    """S9: ensure_nginx_server_cert: Mastio's key and CSR with DNS then IP SANs -> sign-csr/mastio-server."""
    root, inter = await current(aca)
    key = ec_key()
    ips = ("127.0.0.1", "10.20.0.5")
    sans = [x509.DNSName(d) for d in NGINX_DNS] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    t0 = utcnow()
    leaf = await aca.sign_csr("mastio-server", csr_pem(key, sans=sans))
    profile = with_(PLUGIN["nginx"], subject=(("CN", NGINX_DNS[0]), ("O", ORG)),
                    san=tuple(("dns", d) for d in NGINX_DNS) + tuple(("ip", i) for i in ips))
    assert_profile(leaf.x509, profile, issuer=inter.x509, issued_at=t0, public_key=key.public_key())
    check_leaf_fields(leaf, inter, root.certificate, "")
    ref = reference_certificate(profile, issuer_name=inter.x509.subject)
    assert subject_der(leaf.x509) == subject_der(ref)
    # org-ca.crt is Root then Int, as Mastio writes it for nginx's ssl_client_certificate.
    assert tuple(reversed(leaf.ca_chain)) == (root.certificate, inter.certificate)


async def test_s9_nginx_certificate_ip_only_cn_is_first_ip(aca):
    """S9 with IP SANs only: {{first_san}} falls back to the first IP address."""
    _, inter = await current(aca)
    key = ec_key()
    t0 = utcnow()
    leaf = await aca.sign_csr("mastio-server", csr_pem(key, sans=[x509.IPAddress(ipaddress.ip_address("10.20.0.7"))]))
    profile = with_(PLUGIN["nginx"], subject=(("CN", "10.20.0.7"), ("O", ORG)), san=(("ip", "10.20.0.7"),))
    assert_profile(leaf.x509, profile, issuer=inter.x509, issued_at=t0, public_key=key.public_key())


async def test_s10_agent_from_mastio_made_key(aca):
    """S10: _generate_agent_cert: Mastio's key, sign-public-key/agent name=<agent_id>."""
    root, inter = await current(aca)
    key = ec_key()
    t0 = utcnow()
    leaf = await aca.sign_public_key("agent", public_pem(key), name="agent-1")
    assert_profile(leaf.x509, PLUGIN["agent"], issuer=inter.x509, issued_at=t0, public_key=key.public_key())
    check_leaf_fields(leaf, inter, root.certificate, f"spiffe://{TD}/{ORG}/agent-1")
    ref = reference_certificate(MASTIO["agent"], issuer_name=inter.x509.subject)
    assert subject_der(leaf.x509) == subject_der(ref)


async def test_s11_agent_from_enrolment_public_key(aca):
    """S11: sign_external_pubkey: the enrolment's bare SPKI (RSA here), admin-typed agent_id; leaf + Int."""
    root, inter = await current(aca)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    t0 = utcnow()
    leaf = await aca.sign_public_key("agent", public_pem(key).encode(), name="billing-bot")
    profile = with_(PLUGIN["agent"], subject=(("CN", f"{ORG}::billing-bot"), ("O", ORG)),
                    san=(("uri", f"spiffe://{TD}/{ORG}/billing-bot"),))
    assert_profile(leaf.x509, profile, issuer=inter.x509, issued_at=t0, public_key=key.public_key())
    check_leaf_fields(leaf, inter, root.certificate, f"spiffe://{TD}/{ORG}/billing-bot")
    assert leaf.pem_with_issuer.count("BEGIN CERTIFICATE") == 2  # pending_enrollments' leaf + Int


async def test_s12_user_principal_from_csr(aca):
    """S12: sign_user_csr: the principal's CSR with one SPIFFE URI -> sign-csr/principal (1 h)."""
    root, inter = await current(aca)
    key = ec.generate_private_key(ec.SECP384R1())
    spiffe = f"spiffe://{TD}/{ORG}/user/alice"
    t0 = utcnow()
    leaf = await aca.sign_csr("principal", csr_pem(key, sans=[x509.UniformResourceIdentifier(spiffe)], cn="alice"))
    assert_profile(leaf.x509, PLUGIN["principal"], issuer=inter.x509, issued_at=t0, public_key=key.public_key())
    check_leaf_fields(leaf, inter, root.certificate, spiffe)
    assert subject_der(leaf.x509) == bytes.fromhex("3000")  # the CSR's subject is ignored
