"""Exception mapping against the real Vault (and a mock where Vault cannot be
made to answer so), and proof that no exception carries the request body."""

from __future__ import annotations

import datetime as dt
import ipaddress

import httpx
import pytest
from cryptography import x509

from _pki import ORG, TD, csr_pem, ec_key, private_pem, public_pem
from _vault import VaultServer
from conftest import client_kwargs

import mastio_ca
from mastio_ca import (
    CAStateError,
    Conflict,
    InvalidRequest,
    MastioCAError,
    NotFound,
    PermissionDenied,
    PolicyRefused,
    Sealed,
    KeyUnavailable,
    TransportError,
)


def principal_csr(spiffe: str = f"spiffe://{TD}/{ORG}/user/alice") -> str:
    return csr_pem(ec_key(), sans=[x509.UniformResourceIdentifier(spiffe)])


@pytest.mark.asyncio
async def test_unknown_role_is_not_found(aca):
    with pytest.raises(NotFound) as e:
        await aca.sign_public_key("no-such-role", public_pem(ec_key()), name="agent-1")
    assert (e.value.status, e.value.operation) == (404, "sign-public-key")
    with pytest.raises(NotFound) as e:
        await aca.sign_csr("no-such-role", principal_csr())
    assert (e.value.status, e.value.operation) == (404, "sign-csr")
    assert str(e.value).startswith("mastio-ca sign-csr: 404")


@pytest.mark.asyncio
async def test_no_ca_yet_is_not_found(aca_empty):
    with pytest.raises(NotFound) as e:
        await aca_empty.org_ca()
    assert (e.value.status, e.value.operation) == (404, "cert")
    with pytest.raises(NotFound):
        await aca_empty.intermediate()


@pytest.mark.asyncio
async def test_csr_breaking_the_role_is_policy_refused(aca):
    with pytest.raises(PolicyRefused) as e:  # another org's SPIFFE ID
        await aca.sign_csr("principal", principal_csr(f"spiffe://{TD}/other-org/user/alice"))
    assert e.value.status == 400 and e.value.messages and e.value.operation == "sign-csr"
    with pytest.raises(PolicyRefused):  # a DNS name outside the nginx allow-list
        await aca.sign_csr("mastio-server", csr_pem(ec_key(), sans=[x509.DNSName("evil.example")]))
    with pytest.raises(PolicyRefused):  # an IP outside the allowed CIDRs
        await aca.sign_csr("mastio-server", csr_pem(ec_key(), sans=[x509.IPAddress(ipaddress.ip_address("192.0.2.1"))]))
    with pytest.raises(PolicyRefused) as e:  # whom for? neither name nor spiffe_id
        await aca.sign_public_key("agent", public_pem(ec_key()))
    assert e.value.operation == "sign-public-key"


@pytest.mark.asyncio
async def test_batch_refusal_fails_only_its_entry(aca):
    batch = await aca.sign_csr_batch("principal", [principal_csr(), principal_csr(f"spiffe://{TD}/x/user/a")])
    assert batch.failed == 1
    assert batch[0].ok and not batch[1].ok
    assert isinstance(batch[1].error, PolicyRefused) and batch[1].error.status == 400
    with pytest.raises(PolicyRefused):
        batch.certificates()


@pytest.mark.asyncio
async def test_generate_twice_is_conflict(aca_empty):
    first = await aca_empty.generate(org_id=ORG)
    with pytest.raises(Conflict) as e:
        await aca_empty.generate(org_id=ORG)
    assert (e.value.status, e.value.operation) == (409, "generate")
    with pytest.raises(Conflict):  # a stale cas
        await aca_empty.generate(org_id=ORG, cas=first.version + 5)
    await aca_empty.generate_intermediate()
    with pytest.raises(Conflict) as e:
        await aca_empty.generate_intermediate()
    assert e.value.operation == "intermediate-generate"


@pytest.mark.asyncio
async def test_bad_field_outside_sign_paths_is_invalid_request(aca_empty):
    with pytest.raises(InvalidRequest) as e:
        await aca_empty.generate(org_id=ORG, key_type="dsa")
    assert (e.value.status, e.value.operation) == (400, "generate")
    assert not isinstance(e.value, PolicyRefused)


@pytest.mark.asyncio
async def test_stale_intermediate_is_ca_state_error(aca):
    root = await aca.org_ca()
    await aca.generate(org_id=ORG, cas=root.version)  # a new Org CA; the intermediate is the old one's
    with pytest.raises(CAStateError) as e:
        await aca.sign_public_key("agent", public_pem(ec_key()), name="agent-1")
    assert e.value.status == 422 and e.value.messages


@pytest.mark.asyncio
async def test_token_without_policy_is_permission_denied(vault, mastio_mount):
    token = vault.token_with("default")
    async with mastio_ca.AsyncMastioCA(**client_kwargs(vault, mastio_mount, token)) as ca:
        with pytest.raises(PermissionDenied) as e:
            await ca.sign_public_key("agent", public_pem(ec_key()), name="agent-1")
        assert (e.value.status, e.value.operation) == (403, "sign-public-key")
        with pytest.raises(PermissionDenied):
            await ca.generate(org_id=ORG)
        with pytest.raises(PermissionDenied):
            await ca.health()
        assert (await ca.org_ca()).certificate  # the CA certificates need no token
        assert (await ca.intermediate()).certificate
    async with mastio_ca.AsyncMastioCA(**client_kwargs(vault, mastio_mount, "not-a-token")) as ca:
        with pytest.raises(PermissionDenied):
            await ca.sign_csr("principal", principal_csr())


@pytest.mark.asyncio
async def test_unreachable_vault_is_transport_error():
    from _vault import _free_port_pair

    port = _free_port_pair()
    async with mastio_ca.AsyncMastioCA(f"http://127.0.0.1:{port}", "t", allow_http=True, timeout=2) as ca:
        with pytest.raises(TransportError) as e:
            await ca.org_ca()
    assert e.value.status is None and e.value.operation == "cert"
    assert "could not reach Vault" in str(e.value)


def _mock(handler) -> mastio_ca.MastioCA:
    return mastio_ca.MastioCA("https://vault.test", "t", transport=httpx.MockTransport(handler))


def test_timeout_is_transport_error():
    def handler(request):
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(TransportError) as e:
        _mock(handler).health()
    assert "timed out" in str(e.value) and e.value.operation == "health"


@pytest.mark.parametrize(
    "status, errors, cls",
    [
        (503, ["Vault is sealed"], Sealed),
        (503, ['signing certificate: the PKCS#11 module has no token "mastio"'], KeyUnavailable),
        (503, ["standby, no active node"], MastioCAError),
        (500, ["1 error occurred:\n\t* internal error\n\n"], MastioCAError),
        (404, [], NotFound),
        (409, ["exists"], Conflict),
        (422, ["expired"], CAStateError),
        (403, ["permission denied"], PermissionDenied),
        (400, ["bad"], InvalidRequest),
    ],
)
def test_status_mapping(status, errors, cls):
    def handler(request):
        return httpx.Response(status, json={"errors": errors})

    with pytest.raises(MastioCAError) as e:
        _mock(handler).org_ca()
    assert type(e.value) is cls
    assert e.value.status == status and e.value.messages == tuple(errors)
    if status == 500:
        assert str(e.value) == "mastio-ca cert: 500: internal error"


def test_redirect_is_not_followed():
    seen = []

    def handler(request):
        seen.append(request.url.host)
        return httpx.Response(307, headers={"Location": "https://elsewhere.test/v1/mastio-ca/cert"})

    with pytest.raises(MastioCAError) as e:
        _mock(handler).org_ca()
    assert e.value.status == 307 and "redirect" in str(e.value) and seen == ["vault.test"]


def test_non_json_error_has_no_body():
    def handler(request):
        return httpx.Response(502, text="<html>bad gateway, you sent: SECRET-BODY-ECHO</html>")

    with pytest.raises(MastioCAError) as e:
        _mock(handler).sign_csr("principal", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")
    assert "SECRET-BODY-ECHO" not in str(e.value) and e.value.status == 502


def test_sealed_on_a_real_sealed_vault():
    """A second, short-lived server, sealed for real (the session's stays unsealed)."""
    server = VaultServer()
    try:
        server.start()
        server.enable("mastio-ca")
        server.call("POST", "mastio-ca/generate", {"org_id": ORG})
        server.call("PUT", "sys/seal")
        with mastio_ca.MastioCA(**client_kwargs(server, "mastio-ca")) as ca:
            with pytest.raises(Sealed) as e:
                ca.org_ca()
        assert e.value.status == 503 and any("sealed" in m for m in e.value.messages)
    finally:
        server.stop()


# ---- no request body in any message ----------------------------------------------------


def _windows(secret_pem: str, n: int = 16) -> set[str]:
    b64 = "".join(line for line in secret_pem.splitlines() if not line.startswith("-----"))
    return {b64[i : i + n] for i in range(0, len(b64) - n + 1)}


def _assert_clean(exc: BaseException, secret_pem: str) -> None:
    text = " ".join([str(exc), repr(exc), *getattr(exc, "messages", ()), str(getattr(exc, "detail", ""))])
    leaked = [w for w in _windows(secret_pem) if w in text]
    assert not leaked, f"the exception carries part of the request body: {text[:200]}"
    assert exc.__cause__ is None


@pytest.mark.asyncio
async def test_messages_never_carry_the_request_body(aca):
    secret = private_pem(ec_key())
    pub = public_pem(ec_key())
    attempts = [
        lambda: aca.sign_csr("principal", secret),
        lambda: aca.sign_public_key("agent", secret, name="agent-1"),
        lambda: aca.sign_public_key("agent", pub, name=secret),
        lambda: aca.sign_public_key("agent", pub, spiffe_id=secret),
        lambda: aca.sign_public_key("mastio-leaf", pub, spiffe_id=secret.replace("\n", "")),
        lambda: aca.generate(org_id=secret),
        lambda: aca.generate(org_id=ORG, common_name=secret),
        lambda: aca.generate_intermediate(common_name=secret),
        lambda: aca.revoke(secret, reason="keyCompromise"),
        lambda: aca.revoke_serial(secret, "intermediate-ca", dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)),
        lambda: aca.revoke_serial("4f:2a", secret, dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)),
        lambda: aca.revoke(public_pem(ec_key()), reason=secret),
    ]
    for attempt in attempts:
        with pytest.raises(MastioCAError) as e:
            await attempt()
        _assert_clean(e.value, secret)
    batch = await aca.sign_csr_batch("principal", [secret])
    assert batch.failed == 1
    _assert_clean(batch[0].error, secret)


def test_an_echoing_server_is_redacted():
    """Even if Vault echoed what it was sent, the exception would not carry it."""
    secret = private_pem(ec_key())
    b64_line = secret.splitlines()[1]

    def handler(request):
        import json

        body = json.loads(request.content)
        return httpx.Response(400, json={"errors": [f"bad csr {body['csr']}", f"first line {b64_line}"]})

    with pytest.raises(PolicyRefused) as e:
        _mock(handler).sign_csr("principal", secret)
    _assert_clean(e.value, secret)
    assert "[PEM redacted]" in str(e.value) and "[redacted]" in str(e.value)


def test_pem_private_key_never_in_transport_error():
    secret = private_pem(ec_key())

    def handler(request):
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(TransportError) as e:
        _mock(handler).sign_public_key("agent", secret, name="x")
    _assert_clean(e.value, secret)


def test_an_echoing_revoke_is_redacted():
    """revoke's 400 is InvalidRequest (as the Go client's ErrInvalidRequest), with the sent PEM cut out."""
    secret = private_pem(ec_key())

    def handler(request):
        import json

        body = json.loads(request.content)
        return httpx.Response(400, json={"errors": [f"certificate: cannot parse {body['certificate']}"]})

    with pytest.raises(InvalidRequest) as e:
        _mock(handler).revoke(secret, reason="keyCompromise")
    assert type(e.value) is InvalidRequest and (e.value.status, e.value.operation) == (400, "revoke")
    _assert_clean(e.value, secret)
    assert "[PEM redacted]" in str(e.value)
