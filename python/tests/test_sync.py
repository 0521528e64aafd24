"""The synchronous client on the real Vault: what Mastio's sync sites call
(S2, S10, S11, S13, S14) and the error mapping."""

from __future__ import annotations

import pytest
from cryptography import x509

from _pki import ORG, TD, assert_profile, csr_pem, ec_key, public_pem, utcnow, with_
from conftest import client_kwargs
from test_sites import PLUGIN, check_leaf_fields

import mastio_ca
from mastio_ca import Conflict, NotFound, PermissionDenied, PolicyRefused, PublicKeyRequest


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
