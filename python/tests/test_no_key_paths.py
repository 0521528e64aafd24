"""No method can fetch a key: the public API's names, and every HTTP path the
clients can reach while every public method is called (recorded with an
httpx MockTransport), avoid the paths that can return a key."""

from __future__ import annotations

import datetime as dt
import inspect
import json
import re

import httpx
import pytest

import mastio_ca
from mastio_ca import AsyncMastioCA, ConfigurationError, InvalidRequest, MastioCA, PublicKeyRequest

# The plugin's paths that can return a private key (the KV mirror, imports,
# and the admin paths a sign-only client has no business with).
FORBIDDEN = ("data/", "metadata/", "kv-export", "import", "intermediate/import", "roles", "config")

METHODS = {
    "org_ca", "intermediate", "generate", "generate_intermediate", "rotate_intermediate",
    "sign_csr", "sign_csr_batch", "sign_public_key", "sign_public_key_batch", "health",
    "revoke", "revoke_serial", "crl_pem",
}
ATTRIBUTES = {"address", "mount", "namespace", "timeout"}
CLOSE = {MastioCA: "close", AsyncMastioCA: "aclose"}

PUB = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
CSR = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
CERT = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
CRL = "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"

# One call of every public method, with every optional argument set.
CALLS = {
    "org_ca": ((), {}),
    "intermediate": ((), {}),
    "generate": ((), dict(org_id="acme", common_name="acme CA", key_type="rsa", key_bits=4096, ttl="87600h",
                          path_len=1, cas=1)),
    "generate_intermediate": ((), dict(key_type="ec", key_bits=256, ttl=86400 * 30, common_name="x", cas=1)),
    "rotate_intermediate": ((), dict(grace_days=14, dry_run=True, cas=1, key_type="ec", key_bits=256, ttl="8760h")),
    "sign_csr": (("agent", CSR), dict(ttl="1h")),
    "sign_csr_batch": (("agent", [CSR, CSR]), dict(ttl=3600)),
    "sign_public_key": (("agent", PUB), dict(name="agent-1", ttl="1h")),
    "sign_public_key_batch": (("agent", [PublicKeyRequest(PUB, name="a"), {"public_key": PUB, "spiffe_id": "spiffe://x/y"}]), {}),
    "health": ((), {}),
    "revoke": ((CERT,), dict(reason="keyCompromise")),
    "revoke_serial": (("4f:2a", "intermediate-ca", dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)),
                      dict(reason="superseded")),
    "crl_pem": ((), {}),
}

# Role names that try to leave the sign path.
HOSTILE_ROLES = ["../data/org-ca", "../../import", "agent/../../config", "x/y", "", ".", "..", "agent?x=1",
                 "agent#", "a%2F..%2Fdata", "roles/agent", " agent", "agent\n"]


def _public(cls) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_")}


@pytest.mark.parametrize("cls", [MastioCA, AsyncMastioCA])
def test_public_api_names(cls):
    names = _public(cls)
    assert names == METHODS | {"from_env", CLOSE[cls]}, (
        "a new public name must be reviewed against the no-key rule and added here")
    names |= _public(cls("https://vault.test", "tok"))
    assert names == METHODS | ATTRIBUTES | {"from_env", CLOSE[cls]}
    for n in names:
        assert not re.search(r"export|import|private|secret|kv|data|metadata|role|config|load|store|unwrap|raw", n), n
        if "key" in n:
            assert n in {"sign_public_key", "sign_public_key_batch"}, n
    assert set(CALLS) == METHODS


def test_both_clients_have_the_same_methods():
    for name in METHODS:
        s, a = getattr(MastioCA, name), getattr(AsyncMastioCA, name)
        assert inspect.signature(s) == inspect.signature(a), name
        assert not inspect.iscoroutinefunction(s) and inspect.iscoroutinefunction(a), name
        assert s.__doc__ and a.__doc__, name


def test_module_exports_no_key_function():
    for n in mastio_ca.__all__:
        obj = getattr(mastio_ca, n)
        if callable(obj) and not isinstance(obj, type):
            assert n == "verify_continuity"


def _canned(path: str, body: dict | None) -> dict:
    ca = {"certificate": CERT, "ca_chain": [CERT], "fingerprint_sha256": "00", "serial_number": "01",
          "not_before": "2026-01-01T00:00:00Z", "not_after": "2027-01-01T00:00:00Z", "key_type": "ec",
          "key_bits": 256, "source": "generated", "version": 1, "kv_export": False}
    leaf = {"certificate": CERT, "serial_number": "02", "not_after": "2027-01-01T00:00:00.123456789Z",
            "spiffe_id": "spiffe://cullis.local/acme/agent-1"}
    if path in ("cert", "generate"):
        return ca
    if path in ("intermediate/cert", "intermediate/generate"):
        return {**ca, "bundle": [CERT]}
    if path == "intermediate/rotate":
        return {**ca, "bundle": [CERT, CERT], "previous": CERT, "previous_grace_until": "2026-01-15T00:00:00Z",
                "continuity_proof": "abc", "retired": [{"certificate": CERT, "serial_number": "03",
                                                         "grace_until": "2026-01-15T00:00:00Z", "continuity_proof": "abc"}],
                "old_intermediate_cn": "acme Mastio CA", "new_intermediate_cn": "acme Mastio CA",
                "grace_days": 14, "dry_run": True}
    if path == "revoke":
        return {"serial_number": "4f:2a", "revocation_time": "2026-06-01T00:00:00Z", "reason": body["reason"],
                "not_after": "2027-01-01T00:00:00Z", "issuer_id": "ab" * 20, "already_revoked": False,
                "crl_number": 3}
    if path == "health":
        return {"version": "v0", "commit": "c", "signed": 1, "goroutines": 1, "heap_alloc_bytes": 1,
                "rss_bytes": 1, "uptime_seconds": 1}
    batch = (body or {}).get("csrs") or (body or {}).get("requests")
    if batch:
        return {"certificates": [{"index": i, **leaf} for i in range(len(batch))], "failed": 0,
                "issuing_ca": CERT, "ca_chain": [CERT, CERT]}
    return {**leaf, "issuing_ca": CERT, "ca_chain": [CERT, CERT]}


class Recorder:
    def __init__(self, mount: str):
        self.prefix = f"/v1/{mount}/"
        self.seen: list[tuple[str, str, dict | None]] = []
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        assert path.startswith(self.prefix), path
        rel = path[len(self.prefix):]
        body = json.loads(request.content) if request.content else None
        self.seen.append((request.method, rel, body))
        assert request.headers["X-Vault-Token"] == "tok"
        if rel == "crl/pem":  # the one raw answer
            return httpx.Response(200, content=CRL.encode(), headers={"Content-Type": "application/x-pem-file"})
        return httpx.Response(200, json={"data": _canned(rel, body)})


def _check(seen) -> None:
    paths = {(m, p) for m, p, _ in seen}
    assert paths == {
        ("GET", "cert"), ("GET", "intermediate/cert"), ("POST", "generate"), ("POST", "intermediate/generate"),
        ("POST", "intermediate/rotate"), ("POST", "sign-csr/agent"), ("POST", "sign-public-key/agent"),
        ("GET", "health"), ("POST", "revoke"), ("GET", "crl/pem"),
    }
    for _, p, body in seen:
        assert not any(p.startswith(f) for f in FORBIDDEN), p
        assert "key_pem" not in json.dumps(body or {}), "a sign-only client never sends a private key field"
        assert re.fullmatch("|".join(re.escape(a).replace("<role>", "[^/]+") for a in mastio_ca.ALLOWED_PATHS), p)


def test_sync_client_reaches_only_sign_and_read_paths():
    rec = Recorder("mastio-ca")
    with MastioCA("https://vault.test", "tok", transport=rec.transport) as ca:
        for name, (args, kwargs) in CALLS.items():
            getattr(ca, name)(*args, **kwargs)
        for role in HOSTILE_ROLES:
            for name in ("sign_csr", "sign_csr_batch", "sign_public_key", "sign_public_key_batch"):
                args = {"sign_csr": (CSR,), "sign_csr_batch": ([CSR],), "sign_public_key": (PUB, "a"),
                        "sign_public_key_batch": ([{"public_key": PUB, "name": "a"}],)}[name]
                with pytest.raises(InvalidRequest):
                    getattr(ca, name)(role, *args)
    assert len(rec.seen) == len(CALLS)
    _check(rec.seen)
    rot = [b for m, p, b in rec.seen if p == "intermediate/rotate"][0]
    assert rot == {"grace_days": 14, "dry_run": True, "cas": 1, "key_type": "ec", "key_bits": 256, "ttl": "8760h"}
    assert [b for m, p, b in rec.seen if p == "revoke"] == [
        {"certificate": CERT, "reason": "keyCompromise"},
        {"serial_number": "4f:2a", "issuer": "intermediate-ca", "not_after": "2027-01-01T00:00:00Z", "reason": "superseded"},
    ]


@pytest.mark.asyncio
async def test_async_client_reaches_only_sign_and_read_paths():
    rec = Recorder("pki/mastio")
    async with AsyncMastioCA("https://vault.test", "tok", mount="/pki/mastio/", transport=rec.transport) as ca:
        for name, (args, kwargs) in CALLS.items():
            await getattr(ca, name)(*args, **kwargs)
        for role in HOSTILE_ROLES:
            with pytest.raises(InvalidRequest):
                await ca.sign_public_key(role, PUB, name="a")
    assert len(rec.seen) == len(CALLS)
    _check(rec.seen)


@pytest.mark.parametrize("mount", ["", "/", "../sys", "mastio-ca/../sys", "a//b", "a b", "a?x", "a#"])
def test_hostile_mount_is_refused(mount):
    with pytest.raises(ConfigurationError):
        MastioCA("https://vault.test", "tok", mount=mount)
