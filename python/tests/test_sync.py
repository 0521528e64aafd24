"""The synchronous client on the real Vault: what Mastio's sync sites call
(S2, S10, S11, S13, S14), revocation, and the error mapping."""

from __future__ import annotations

import pytest
from cryptography import x509

from _pki import ORG, TD, assert_profile, csr_pem, ec_key, public_pem, utcnow, with_
from conftest import client_kwargs
from test_sites import PLUGIN, check_leaf_fields

import mastio_ca
from mastio_ca import Conflict, InvalidRequest, NotFound, PermissionDenied, PolicyRefused, PublicKeyRequest


def test_sync_s10_agent(sca):
    root, inter = sca.org_ca(), sca.intermediate()
    key = ec_key()
    t0 = utcnow()
    leaf = sca.sign_public_key("agent", public_pem(key), name="agent-1")
    assert_profile(leaf.x509, PLUGIN["agent"], issuer=inter.x509, issued_at=t0, public_key=key.public_key())
    check_leaf_fields(leaf, inter, root.certificate, f"spiffe://{TD}/{ORG}/agent-1")


def test_sync_s12_principal(sca):
    _, inter = sca.org_ca(), sca.intermediate()
    key = ec_key()
    spiffe = f"spiffe://{TD}/{ORG}/workload/etl"
    t0 = utcnow()
    leaf = sca.sign_csr("principal", csr_pem(key, sans=[x509.UniformResourceIdentifier(spiffe)]))
    profile = with_(PLUGIN["principal"], san=(("uri", spiffe),))
    assert_profile(leaf.x509, profile, issuer=inter.x509, issued_at=t0, public_key=key.public_key())
    assert leaf.spiffe_id == spiffe


def test_sync_s14_public_key_batch(sca):
    keys = [ec_key() for _ in range(2)]
    batch = sca.sign_public_key_batch("agent", [PublicKeyRequest(public_pem(k), name=f"a{i}") for i, k in enumerate(keys)])
    certs = batch.certificates()
    assert [c.spiffe_id for c in certs] == [f"spiffe://{TD}/{ORG}/a0", f"spiffe://{TD}/{ORG}/a1"]
    assert batch.failed == 0 and batch.issuing_ca == sca.intermediate().certificate


def test_sync_generate_conflict_then_cas(vault, mount):
    with mastio_ca.MastioCA(**client_kwargs(vault, mount)) as ca:
        first = ca.generate(org_id=ORG)
        with pytest.raises(Conflict):
            ca.generate(org_id=ORG)
        second = ca.generate(org_id=ORG, cas=first.version)
        assert second.version == first.version + 1 and ca.org_ca() == second


def test_sync_errors(vault, sca):
    with pytest.raises(NotFound):
        sca.sign_public_key("no-such-role", public_pem(ec_key()), name="a")
    with pytest.raises(PolicyRefused):
        sca.sign_csr("principal", csr_pem(ec_key(), sans=[x509.UniformResourceIdentifier("spiffe://evil/x")]))
    token = vault.token_with("default")
    with mastio_ca.MastioCA(**client_kwargs(vault, sca.mount, token)) as ca:
        with pytest.raises(PermissionDenied):
            ca.sign_public_key("agent", public_pem(ec_key()), name="a")


def test_sync_rotate_dry_run(sca):
    before = sca.intermediate()
    rot = sca.rotate_intermediate(grace_days=14, dry_run=True)
    assert rot.dry_run and mastio_ca.verify_continuity(before.certificate, rot.certificate, rot.continuity_proof)
    assert sca.intermediate() == before


def test_sync_revoke_and_crl(sca):
    inter = sca.intermediate()
    leaf = sca.sign_public_key("agent", public_pem(ec_key()), name="agent-1")
    by_serial = sca.sign_public_key("agent", public_pem(ec_key()), name="agent-2")
    rev = sca.revoke(leaf.certificate, reason="key_compromise")
    assert isinstance(rev, mastio_ca.Revocation)
    assert (rev.serial_number, rev.reason, rev.not_after, rev.already_revoked) == (
        leaf.serial_number, "keyCompromise", leaf.not_after, False)
    again = sca.revoke(leaf.certificate, reason="superseded")
    assert again.already_revoked and (again.revocation_time, again.reason) == (rev.revocation_time, rev.reason)
    rev2 = sca.revoke_serial(by_serial.serial_number, rev.issuer_id, by_serial.not_after, reason="affiliationChanged")
    assert rev2.reason == "affiliationChanged" and rev2.serial_number == by_serial.serial_number
    crl = x509.load_pem_x509_crl(sca.crl_pem().encode())
    assert crl.is_signature_valid(inter.x509.public_key())
    for s, reason in ((leaf, x509.ReasonFlags.key_compromise), (by_serial, x509.ReasonFlags.affiliation_changed)):
        entry = crl.get_revoked_certificate_by_serial_number(s.x509.serial_number)
        assert entry is not None and entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == reason
    with pytest.raises(InvalidRequest) as e:
        sca.revoke(inter.certificate)
    assert e.value.status == 400 and e.value.operation == "revoke"
    with pytest.raises(InvalidRequest) as e:
        sca.revoke(leaf.certificate, reason="compromised")
    assert e.value.status is None
