"""Fixtures: one Vault dev server per session, one fresh mount per test."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import pytest
import pytest_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _pki, _vault
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # mastio_ca, without installing

from _pki import ORG, TD  # noqa: E402
from _vault import VaultServer  # noqa: E402

import mastio_ca  # noqa: E402

# Mastio's nginx SANs in the tests: MCP_PROXY_NGINX_SAN's default plus the
# host of MCP_PROXY_PROXY_PUBLIC_URL, and the loopback and LAN prefixes the
# operator allows.
NGINX_DNS = ("mastio.local", "proxy.acme.example")
NGINX_IP_CIDRS = ("127.0.0.0/8", "10.20.0.0/16")

MASTIO_LEAF_ROLE = {
    "uri_san_pattern": "spiffe://{{trust_domain}}/proxy/{{org_id}}",
    "allow_outside_org": True,
    "uri_san_count": 1,
    "subject_common_name": "proxy:{{org_id}}",
    "subject_organization": "{{org_id}}",
    "key_usage": "",
    "ext_key_usage": "",
    "ttl": "8760h",
    "max_ttl": "8760h",
}

MASTIO_SERVER_ROLE = {
    "uri_san_count": 0,
    "subject_common_name": "{{first_san}}",
    "subject_organization": "{{org_id}}",
    "allow_dns_sans": True,
    "allowed_dns_sans": ",".join(NGINX_DNS),
    "allow_ip_sans": True,
    "allowed_ip_sans": ",".join(NGINX_IP_CIDRS),
    "key_usage": "DigitalSignature,KeyEncipherment",
    "ext_key_usage": "ServerAuth",
    "ttl": "2160h",
    "max_ttl": "2160h",
}


@pytest.fixture(scope="session")
def vault():
    """The session's Vault dev server; always stopped, even after a failure."""
    server = VaultServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def mount(vault):
    """A fresh, empty mastio-ca mount, removed after the test."""
    name = "mastio-ca-" + secrets.token_hex(4)
    vault.enable(name)
    try:
        yield name
    finally:
        vault.disable(name)


def write_mastio_roles(vault: VaultServer, mount: str) -> None:
    """The contract's recipes for the two roles the plugin does not seed (admin token, plain httpx)."""
    vault.call("POST", f"{mount}/roles/mastio-leaf", MASTIO_LEAF_ROLE)
    vault.call("POST", f"{mount}/roles/mastio-server", MASTIO_SERVER_ROLE)


@pytest.fixture
def mastio_mount(vault, mount):
    """A mount as Mastio's boot leaves it: Org CA (S1), intermediate (S3), Mastio's roles."""
    vault.call("POST", f"{mount}/generate", {"org_id": ORG})
    vault.call("POST", f"{mount}/intermediate/generate", {})
    write_mastio_roles(vault, mount)
    return mount


def client_kwargs(vault: VaultServer, mount: str, token: str | None = None) -> dict:
    return dict(address=vault.addr, token=vault.token if token is None else token, mount=mount, allow_http=True)


@pytest_asyncio.fixture
async def aca(vault, mastio_mount):
    """The async client on a Mastio-ready mount, with the root token."""
    async with mastio_ca.AsyncMastioCA(**client_kwargs(vault, mastio_mount)) as ca:
        yield ca


@pytest_asyncio.fixture
async def aca_empty(vault, mount):
    """The async client on an empty mount, with the root token."""
    async with mastio_ca.AsyncMastioCA(**client_kwargs(vault, mount)) as ca:
        yield ca


@pytest.fixture
def sca(vault, mastio_mount):
    """The sync client on a Mastio-ready mount, with the root token."""
    with mastio_ca.MastioCA(**client_kwargs(vault, mastio_mount)) as ca:
        yield ca


__all__ = ["ORG", "TD", "NGINX_DNS", "NGINX_IP_CIDRS", "write_mastio_roles", "client_kwargs"]
