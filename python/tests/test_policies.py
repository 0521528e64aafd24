"""policies/mastio-signer.hcl, policies/mastio-proxy.hcl and
policies/mastio-revoker.hcl, written into the real Vault with the mount
prefix replaced: a token with each can make exactly Mastio's calls, and is
refused (403) on every path that could give it a key or change the CA setup
it has no business with."""

from __future__ import annotations

import pytest
from cryptography import x509

from _pki import ORG, TD, csr_pem, ec_key, public_pem
from _vault import REPO
from conftest import NGINX_DNS, client_kwargs, write_mastio_roles

import mastio_ca
from mastio_ca import Conflict, InvalidRequest, PermissionDenied, PublicKeyRequest

pytestmark = pytest.mark.asyncio

# Paths no Mastio token may touch: (method, path under the mount, body).
DENIED_RAW = [
    ("POST", "import", {"key_pem": "x", "cert_pem": "y"}),
    ("POST", "intermediate/import", {"key_pem": "x", "cert_pem": "y"}),
    ("GET", "data/org-ca", None),
    ("GET", "data/intermediate-ca", None),
    ("GET", "metadata/org-ca", None),
    ("POST", "kv-export/org-ca", {"enabled": False}),
    ("GET", "kv-export/org-ca", None),
    ("GET", "roles/agent", None),
    ("LIST", "roles", None),
    ("POST", "roles/agent", {"ttl": "1h"}),
    ("DELETE", "roles/agent", None),
    ("GET", "config", None),
    ("POST", "config", {"trust_domain": "evil.example"}),
]


def load_policy(vault, mount: str, name: str) -> str:
    """Write policies/<name>.hcl for this mount; return the Vault policy name."""
    path = REPO / "policies" / f"{name}.hcl"
    if not path.exists():
        pytest.skip(f"{path.relative_to(REPO)} is not in the tree yet (the Go side of issue 13 adds it)")
    text = path.read_text()
    assert '"mastio-ca/' in text, f"{path.name} does not use the mastio-ca/ prefix the docs promise"
    policy = f"{name}-{mount}"
    vault.call("PUT", f"sys/policies/acl/{policy}", {"policy": text.replace('"mastio-ca/', f'"{mount}/')})
    return policy


def assert_raw_denied(vault, mount: str, token: str, extra=()) -> None:
    for method, path, body in [*DENIED_RAW, *extra]:
        r = vault.admin.request(method, f"{mount}/{path}", json=body, headers={"X-Vault-Token": token})
        assert r.status_code == 403, f"{method} {path} answered {r.status_code}, want 403"


def principal_csr() -> str:
    return csr_pem(ec_key(), sans=[x509.UniformResourceIdentifier(f"spiffe://{TD}/{ORG}/user/alice")])


async def mastio_signing_calls(ca: mastio_ca.AsyncMastioCA) -> None:
    """Every signing and reading call Mastio makes with its token (S6-S12, S14)."""
    assert (await ca.org_ca()).certificate
    assert (await ca.intermediate()).bundle
    await ca.sign_public_key("agent", public_pem(ec_key()), name="agent-1")  # S10, S11
    await ca.sign_public_key("mastio-leaf", public_pem(ec_key()), spiffe_id=f"spiffe://{TD}/proxy/{ORG}")  # S6-S8
    await ca.sign_csr("mastio-server", csr_pem(ec_key(), sans=[x509.DNSName(NGINX_DNS[0])]))  # S9
    await ca.sign_csr("principal", principal_csr())  # S12
    batch = await ca.sign_public_key_batch("agent", [PublicKeyRequest(public_pem(ec_key()), name="a")])  # S14
    assert batch.failed == 0
    assert (await ca.sign_csr_batch("principal", [principal_csr()])).failed == 0


async def test_mastio_signer_policy(vault, mastio_mount):
    token = vault.token_with(load_policy(vault, mastio_mount, "mastio-signer"))
    async with mastio_ca.AsyncMastioCA(**client_kwargs(vault, mastio_mount, token)) as ca:
        await mastio_signing_calls(ca)
        for denied in (
            lambda: ca.generate(org_id=ORG),
            lambda: ca.generate(org_id=ORG, cas=1),
            lambda: ca.generate_intermediate(),
            lambda: ca.generate_intermediate(cas=1),
            lambda: ca.rotate_intermediate(grace_days=14),
            lambda: ca.rotate_intermediate(grace_days=14, dry_run=True),
        ):
            with pytest.raises(PermissionDenied):
                await denied()
    assert_raw_denied(vault, mastio_mount, token)


async def test_mastio_proxy_policy(vault, mount):
    token = vault.token_with(load_policy(vault, mount, "mastio-proxy"))
    async with mastio_ca.AsyncMastioCA(**client_kwargs(vault, mount, token)) as ca:
        # S1 and S3 at first boot: create-only, without cas.
        root = await ca.generate(org_id=ORG)
        with pytest.raises(Conflict):  # allowed, but never replaces
            await ca.generate(org_id=ORG)
        with pytest.raises(PermissionDenied):  # replacing (S2, S13) is the admin's
            await ca.generate(org_id=ORG, key_type="rsa", key_bits=4096, cas=root.version)
        inter = await ca.generate_intermediate()
        with pytest.raises(Conflict):
            await ca.generate_intermediate()
        with pytest.raises(PermissionDenied):
            await ca.generate_intermediate(cas=inter.version)
        write_mastio_roles(vault, mount)  # the operator's job, with the admin token
        await mastio_signing_calls(ca)
        # S4/S5: rotation as Mastio's admin endpoint and watcher call it.
        dry = await ca.rotate_intermediate(grace_days=14, dry_run=True)
        assert dry.dry_run and (await ca.intermediate()).certificate == inter.certificate
        rot = await ca.rotate_intermediate(grace_days=7, cas=inter.version)
        assert rot.previous == inter.certificate
        assert (await ca.health()).org_ca_days_left is not None
    assert_raw_denied(vault, mount, token, extra=[
        ("POST", "intermediate/rotate", {"grace_period": "0s"}),  # ending a grace early is the admin's
        ("POST", "intermediate/rotate", {"drop_earlier": True}),
    ])


async def test_mastio_revoker_policy(vault, mastio_mount):
    """Mastio's revoke flow: revoke (by certificate or serial) and nothing else; the CRL needs no token."""
    async with mastio_ca.AsyncMastioCA(**client_kwargs(vault, mastio_mount)) as admin:
        leaf = await admin.sign_public_key("agent", public_pem(ec_key()), name="agent-1")
        other = await admin.sign_public_key("agent", public_pem(ec_key()), name="agent-2")
    token = vault.token_with(load_policy(vault, mastio_mount, "mastio-revoker"))
    async with mastio_ca.AsyncMastioCA(**client_kwargs(vault, mastio_mount, token)) as ca:
        rev = await ca.revoke(leaf.certificate, reason="keyCompromise")
        assert rev.serial_number == leaf.serial_number and not rev.already_revoked
        assert (await ca.revoke(leaf.certificate)).already_revoked
        by_serial = await ca.revoke_serial(other.serial_number, "intermediate-ca", other.not_after, reason="superseded")
        assert by_serial.serial_number == other.serial_number and by_serial.reason == "superseded"
        crl = x509.load_pem_x509_crl((await ca.crl_pem()).encode())
        for s in (leaf, other):
            assert crl.get_revoked_certificate_by_serial_number(s.x509.serial_number) is not None
        with pytest.raises(InvalidRequest):  # the plugin's refusal, not the policy's
            await ca.revoke((await ca.intermediate()).certificate)
        for denied in (
            lambda: ca.sign_public_key("agent", public_pem(ec_key()), name="agent-3"),
            lambda: ca.sign_public_key("mastio-leaf", public_pem(ec_key()), spiffe_id=f"spiffe://{TD}/proxy/{ORG}"),
            lambda: ca.sign_csr("principal", principal_csr()),
            lambda: ca.sign_csr("mastio-server", csr_pem(ec_key(), sans=[x509.DNSName(NGINX_DNS[0])])),
            lambda: ca.sign_public_key_batch("agent", [PublicKeyRequest(public_pem(ec_key()), name="a")]),
            lambda: ca.sign_csr_batch("principal", [principal_csr()]),
            lambda: ca.generate(org_id=ORG),
            lambda: ca.generate_intermediate(),
            lambda: ca.rotate_intermediate(grace_days=14, dry_run=True),
            lambda: ca.health(),
        ):
            with pytest.raises(PermissionDenied):
                await denied()
    assert_raw_denied(vault, mastio_mount, token, extra=[
        ("POST", "tidy", {}),
        ("POST", "intermediate/rotate", {"grace_days": 14}),
        ("POST", "root/sign-intermediate", {"csr": "x"}),
    ])
