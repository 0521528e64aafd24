"""Configuration as Mastio's Vault provider takes it, and the request and
answer code shared by both clients (no Vault needed)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import httpx
import pytest

from _pki import ec_key, reference_certificate, MASTIO

import mastio_ca
from mastio_ca import AsyncMastioCA, ConfigurationError, InvalidRequest, MastioCA
from mastio_ca._models import parse_time


def _capture():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": {"version": "v1", "commit": "c"}})

    return seen, httpx.MockTransport(handler)


def test_plain_http_is_refused_unless_allowed():
    with pytest.raises(ConfigurationError) as e:
        MastioCA("http://vault.internal:8200", "s.Zq81secret")
    assert "allow_http" in str(e.value) and "Zq81" not in str(e.value)
    MastioCA("http://127.0.0.1:8200", "tok", allow_http=True).close()
    MastioCA("https://vault.internal:8200", "tok").close()
    for bad in ("", "vault:8200", "ftp://vault", "https://", "https://user:pw@vault", "https://vault?x=1"):
        with pytest.raises(ConfigurationError):
            MastioCA(bad, "tok")


def test_headers_mount_and_timeout():
    seen, transport = _capture()
    with MastioCA("https://vault.example:8200/", "s.secret", mount="secrets/mastio-ca", namespace="team-a",
                  transport=transport) as ca:
        assert ca.timeout == mastio_ca.DEFAULT_TIMEOUT == 10.0
        assert ca._http.timeout == httpx.Timeout(10.0)
        ca.health()
        assert "s.secret" not in repr(ca)
    (req,) = seen
    assert str(req.url) == "https://vault.example:8200/v1/secrets/mastio-ca/health"
    assert req.headers["X-Vault-Token"] == "s.secret"
    assert req.headers["X-Vault-Namespace"] == "team-a"
    seen, transport = _capture()
    with MastioCA("https://vault.example", transport=transport, timeout=2.5) as ca:  # no token: public reads
        assert ca._http.timeout == httpx.Timeout(2.5)
        ca.health()
    assert "X-Vault-Token" not in seen[0].headers and "X-Vault-Namespace" not in seen[0].headers
    assert seen[0].url.path == "/v1/mastio-ca/health"


def test_from_env_reads_mastio_variables(tmp_path):
    ca_file = tmp_path / "vault-ca.pem"
    from cryptography.hazmat.primitives.serialization import Encoding

    ca_file.write_bytes(reference_certificate(MASTIO["org_ca_boot"]).public_bytes(Encoding.PEM))
    env = {
        "MCP_PROXY_VAULT_ADDR": "https://vault.example:8200",
        "MCP_PROXY_VAULT_TOKEN": "s.tok",
        "MCP_PROXY_VAULT_CA_CERT_PATH": str(ca_file),
        "MCP_PROXY_VAULT_VERIFY_TLS": "false",  # the CA path wins, as in Mastio
        "MCP_PROXY_VAULT_NAMESPACE": "ns1",
        "MASTIO_CA_MOUNT": "pki/mastio",
    }
    ca = MastioCA.from_env(env)
    assert (ca.address, ca.mount, ca.namespace) == ("https://vault.example:8200", "pki/mastio", "ns1")
    assert ca._headers["X-Vault-Token"] == "s.tok"
    assert not isinstance(ca._verify, bool)  # an SSLContext with that bundle
    ca.close()

    ca = AsyncMastioCA.from_env({"MCP_PROXY_VAULT_ADDR": "https://v", "MCP_PROXY_VAULT_VERIFY_TLS": "false"})
    assert ca._verify is False and ca.mount == "mastio-ca" and ca.namespace is None
    assert "X-Vault-Token" not in ca._headers
    assert MastioCA.from_env({"MCP_PROXY_VAULT_ADDR": "https://v"})._verify is True

    with pytest.raises(ConfigurationError):  # http without VAULT_ALLOW_HTTP
        MastioCA.from_env({"MCP_PROXY_VAULT_ADDR": "http://127.0.0.1:8200"})
    MastioCA.from_env({"MCP_PROXY_VAULT_ADDR": "http://127.0.0.1:8200", "VAULT_ALLOW_HTTP": "true"}).close()
    with pytest.raises(ConfigurationError, match="MCP_PROXY_VAULT_ADDR"):
        MastioCA.from_env({})
    with pytest.raises(ConfigurationError, match="MCP_PROXY_VAULT_VERIFY_TLS"):
        MastioCA.from_env({"MCP_PROXY_VAULT_ADDR": "https://v", "MCP_PROXY_VAULT_VERIFY_TLS": "maybe"})
    with pytest.raises(ConfigurationError, match="CA bundle"):
        MastioCA.from_env({"MCP_PROXY_VAULT_ADDR": "https://v", "MCP_PROXY_VAULT_CA_CERT_PATH": str(tmp_path / "no")})
    ca = MastioCA.from_env({"MCP_PROXY_VAULT_ADDR": "https://v"}, mount="other", timeout=3)
    assert ca.mount == "other" and ca.timeout == 3


def test_arguments_refused_before_sending():
    seen, transport = _capture()
    with MastioCA("https://v", "t", transport=transport) as ca:
        for bad in (0, 91, -1, True, "14"):
            with pytest.raises(InvalidRequest, match="grace_days"):
                ca.rotate_intermediate(grace_days=bad)
        with pytest.raises(InvalidRequest, match="dry_run"):
            ca.rotate_intermediate(dry_run="yes")
        with pytest.raises(InvalidRequest, match="1 to 100"):
            ca.sign_csr_batch("principal", [])
        with pytest.raises(InvalidRequest, match="1 to 100"):
            ca.sign_public_key_batch("agent", [{"public_key": "-----BEGIN PUBLIC KEY-----"}] * 101)
        with pytest.raises(InvalidRequest, match="not one string"):
            ca.sign_csr_batch("principal", "-----BEGIN CERTIFICATE REQUEST-----")
        with pytest.raises(InvalidRequest, match="unknown fields"):
            ca.sign_public_key_batch("agent", [{"public_key": "-----BEGIN PUBLIC KEY-----", "key_pem": "x"}])
        with pytest.raises(InvalidRequest, match="PEM"):
            ca.sign_csr("principal", "")
        with pytest.raises(InvalidRequest, match="ttl"):
            ca.sign_csr("principal", "x", ttl=dt.timedelta(seconds=-1))
    assert seen == []


def test_request_bodies():
    bodies = []

    def handler(request):
        bodies.append(json.loads(request.content))
        return httpx.Response(400, json={"errors": ["stop"]})

    with MastioCA("https://v", "t", transport=httpx.MockTransport(handler)) as ca:
        for call in (
            lambda: ca.rotate_intermediate(),
            lambda: ca.rotate_intermediate(grace_days=None),
            lambda: ca.rotate_intermediate(grace_days=90, dry_run=True, cas=3),
            lambda: ca.generate(org_id="acme"),
            lambda: ca.sign_public_key("agent", b"PEM", name="a", ttl=dt.timedelta(hours=2)),
            lambda: ca.sign_csr("principal", "PEM", ttl="30m"),
        ):
            with pytest.raises(mastio_ca.MastioCAError):
                call()
    assert bodies == [
        {"grace_days": 14},
        {},
        {"grace_days": 90, "dry_run": True, "cas": 3},
        {"org_id": "acme"},
        {"public_key": "PEM", "name": "a", "ttl": 7200},
        {"csr": "PEM", "ttl": "30m"},
    ]


def test_results_are_frozen_and_parse_go_times():
    sc = mastio_ca.SignedCertificate("c", "i", ("i",), "01", None, "")
    with pytest.raises(dataclasses.FrozenInstanceError):
        sc.certificate = "x"  # type: ignore[misc]
    assert sc.pem_with_issuer == "c\ni"
    assert parse_time("2026-05-21T10:00:00.123456789Z") == dt.datetime(
        2026, 5, 21, 10, 0, 0, 123456, tzinfo=dt.timezone.utc)
    assert parse_time("2026-05-21T10:00:00Z").tzinfo is not None
    assert parse_time(None) is None
    assert mastio_ca.HAVE_CRYPTOGRAPHY is True


def test_unexpected_answer_is_a_clear_error():
    def handler(request):
        return httpx.Response(200, json={"data": {"certificate": 42}})

    with MastioCA("https://v", "t", transport=httpx.MockTransport(handler)) as ca:
        with pytest.raises(mastio_ca.MastioCAError, match="certificate is not a string"):
            ca.org_ca()

    def empty(request):
        return httpx.Response(204)

    with MastioCA("https://v", "t", transport=httpx.MockTransport(empty)) as ca:
        with pytest.raises(mastio_ca.MastioCAError, match="no data"):
            ca.health()


def test_verify_continuity_rejects_garbage():
    from cryptography.hazmat.primitives.serialization import Encoding

    pem = reference_certificate(MASTIO["intermediate"], key=ec_key()).public_bytes(Encoding.PEM)
    assert not mastio_ca.verify_continuity(pem, pem, "")
    assert not mastio_ca.verify_continuity(pem, pem, "!!!")
    assert not mastio_ca.verify_continuity(pem, pem, "AAAA")


def test_works_without_cryptography():
    """httpx is the only runtime dependency: without cryptography, parsed fields are None."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys; sys.modules['cryptography'] = None\n"
        "import mastio_ca\n"
        "assert mastio_ca.HAVE_CRYPTOGRAPHY is False\n"
        "sc = mastio_ca.SignedCertificate('-----BEGIN CERTIFICATE-----', 'i', ('i',), '01', None, '')\n"
        "assert sc.x509 is None and sc.issuing_ca_x509 is None\n"
        "try:\n    mastio_ca.verify_continuity('a', 'b', 'c')\nexcept ImportError as e:\n    assert 'cryptography' in str(e)\n"
        "else:\n    raise SystemExit('verify_continuity did not refuse')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


# ---- revocation (no Vault: what is refused before sending, what is sent) ----------------

NOT_AFTER = dt.datetime(2027, 1, 31, 12, 0, tzinfo=dt.timezone.utc)
LEAF = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


def test_revoke_arguments_refused_before_sending():
    seen, transport = _capture()
    with MastioCA("https://v", "t", transport=transport) as ca:
        for bad in ("keycompromise", "KeyCompromise", "key-compromise", "removeFromCRL", "remove_from_crl", "1", "",
                    " keyCompromise", None, 1, True):
            with pytest.raises(InvalidRequest, match="RFC 5280") as e:
                ca.revoke(LEAF, reason=bad)
            assert e.value.status is None and e.value.operation == "revoke"
            with pytest.raises(InvalidRequest, match="RFC 5280"):
                ca.revoke_serial("4f:2a", "intermediate-ca", NOT_AFTER, reason=bad)
        with pytest.raises(InvalidRequest, match="reason") as e:  # the value is not echoed
            ca.revoke(LEAF, reason="s.VaultTokenLookalike0123456789")
        assert "Lookalike" not in str(e.value)
        with pytest.raises(InvalidRequest, match="PEM"):
            ca.revoke("", reason="keyCompromise")
        for serial in ("", "zz", "4f:2", "0", "00:00", ":4f", "4f::2a", "ab" * 21, 0, -1, 1 << 160, True, 1.5, None):
            with pytest.raises(InvalidRequest, match="serial_number"):
                ca.revoke_serial(serial, "intermediate-ca", NOT_AFTER)
        for issuer in ("", "intermediate", "../crl", "org-ca/x", "abc", "a b", None):
            with pytest.raises(InvalidRequest, match="issuer"):
                ca.revoke_serial("4f:2a", issuer, NOT_AFTER)
        with pytest.raises(InvalidRequest, match="timezone-aware"):
            ca.revoke_serial("4f:2a", "intermediate-ca", NOT_AFTER.replace(tzinfo=None))
        for bad in ("2027-01-31T12:00:00Z", dt.date(2027, 1, 31), 1800000000, None):
            with pytest.raises(InvalidRequest, match="not_after must be a datetime"):
                ca.revoke_serial("4f:2a", "intermediate-ca", bad)
    assert seen == []


@pytest.mark.asyncio
async def test_async_revoke_refuses_a_bad_reason_before_sending():
    seen, transport = _capture()
    async with AsyncMastioCA("https://v", "t", transport=transport) as ca:
        with pytest.raises(InvalidRequest, match="RFC 5280"):
            await ca.revoke(LEAF, reason="compromised")
        with pytest.raises(InvalidRequest, match="RFC 5280"):
            await ca.revoke_serial("4f:2a", "org-ca", NOT_AFTER, reason="removeFromCRL")
    assert seen == []


def test_revoke_request_bodies():
    bodies = []

    def handler(request):
        bodies.append(json.loads(request.content))
        return httpx.Response(400, json={"errors": ["stop"]})

    cest = dt.timezone(dt.timedelta(hours=2))
    with MastioCA("https://v", "t", transport=httpx.MockTransport(handler)) as ca:
        for call in (
            lambda: ca.revoke(LEAF),
            lambda: ca.revoke(LEAF.encode(), reason="key_compromise"),
            lambda: ca.revoke(LEAF, reason="cACompromise"),
            lambda: ca.revoke(LEAF, reason="aa_compromise"),
            lambda: ca.revoke_serial("4F:2A", "intermediate-ca", NOT_AFTER, reason="cessation_of_operation"),
            lambda: ca.revoke_serial(0x4F2A, "org-ca", dt.datetime(2027, 1, 31, 14, 0, 0, 500, tzinfo=cest)),
            lambda: ca.revoke_serial("4f2a", "AB:CD:EF:01", NOT_AFTER, reason="superseded"),
        ):
            with pytest.raises(InvalidRequest) as e:  # a 400 from revoke: not a role's refusal
                call()
            assert type(e.value) is InvalidRequest and e.value.status == 400 and e.value.operation == "revoke"
    assert bodies == [
        {"certificate": LEAF, "reason": "unspecified"},
        {"certificate": LEAF, "reason": "keyCompromise"},
        {"certificate": LEAF, "reason": "cACompromise"},
        {"certificate": LEAF, "reason": "aACompromise"},
        {"serial_number": "4F:2A", "issuer": "intermediate-ca", "not_after": "2027-01-31T12:00:00Z",
         "reason": "cessationOfOperation"},
        {"serial_number": "4f:2a", "issuer": "org-ca", "not_after": "2027-01-31T12:00:00.000500Z",
         "reason": "unspecified"},
        {"serial_number": "4f2a", "issuer": "abcdef01", "not_after": "2027-01-31T12:00:00Z", "reason": "superseded"},
    ]
    # certificateHold is not among them: the plugin refuses a hold it could never release.
    assert mastio_ca.REVOCATION_REASONS[1] == "keyCompromise" and len(mastio_ca.REVOCATION_REASONS) == 8
    assert "certificateHold" not in mastio_ca.REVOCATION_REASONS


def test_revocation_answer_parsed_and_frozen():
    good = {"serial_number": "4f:2a", "revocation_time": "2026-06-01T10:00:00Z", "reason": "keyCompromise",
            "not_after": "2027-01-31T12:00:00Z", "issuer_id": "ab" * 20, "already_revoked": True, "crl_number": 5}
    answer = [good]

    def handler(request):
        return httpx.Response(200, json={"data": answer[0]})

    with MastioCA("https://v", "t", transport=httpx.MockTransport(handler)) as ca:
        rev = ca.revoke(LEAF, reason="superseded")
        assert rev == mastio_ca.Revocation("4f:2a", dt.datetime(2026, 6, 1, 10, tzinfo=dt.timezone.utc),
                                           "keyCompromise", NOT_AFTER, "ab" * 20, True, 5)
        with pytest.raises(dataclasses.FrozenInstanceError):
            rev.reason = "x"  # type: ignore[misc]
        for key, bad in (("revocation_time", None), ("not_after", "yesterday"), ("crl_number", None),
                         ("already_revoked", "yes"), ("serial_number", 42), ("issuer_id", "")):
            answer[0] = {**good, key: bad}
            with pytest.raises(mastio_ca.MastioCAError, match=f"unexpected answer from the plugin: {key}"):
                ca.revoke(LEAF)


def test_crl_pem_raw_answer():
    crl = "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"
    answers = []

    def handler(request):
        assert request.method == "GET" and request.url.path == "/v1/mastio-ca/crl/pem" and not request.content
        return answers.pop(0)

    with MastioCA("https://v", transport=httpx.MockTransport(handler)) as ca:
        answers.append(httpx.Response(200, content=crl.encode(), headers={"Content-Type": "application/x-pem-file"}))
        assert ca.crl_pem() == crl
        answers.append(httpx.Response(200, json={"data": {"crl": crl}}))  # JSON where PEM was due
        with pytest.raises(mastio_ca.MastioCAError, match="content-type application/json"):
            ca.crl_pem()
        answers.append(httpx.Response(200, content=b"<html>hi</html>", headers={"Content-Type": "application/x-pem-file"}))
        with pytest.raises(mastio_ca.MastioCAError, match="not one PEM CRL"):
            ca.crl_pem()
        answers.append(httpx.Response(404, json={"errors": ["no CA"]}))  # errors stay JSON
        with pytest.raises(mastio_ca.NotFound) as e:
            ca.crl_pem()
        assert e.value.operation == "crl" and e.value.messages == ("no CA",)
