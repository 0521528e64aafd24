"""The two clients: :class:`MastioCA` (sync) and :class:`AsyncMastioCA` (async).

Both take their configuration as Mastio's Vault KMS provider does, build
every request with :mod:`mastio_ca._calls` and read every answer with the
same code; only the HTTP round trip differs.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import ssl
from collections.abc import Iterable, Mapping
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

import httpx

from . import _calls as calls
from . import _models as m
from ._errors import ConfigurationError, MastioCAError, TransportError, error_for, redact

T = TypeVar("T")

DEFAULT_MOUNT = "mastio-ca"
DEFAULT_TIMEOUT = 10.0

_MOUNT_SEGMENT = re.compile(r"[A-Za-z0-9_.-]+")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    v = raw.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be true or false, not {raw!r}")


class _Base:
    """Configuration, request preparation and answer parsing of both clients."""

    def __init__(
        self,
        address: str,
        token: str | None = None,
        *,
        mount: str = DEFAULT_MOUNT,
        verify: bool = True,
        ca_cert: str | os.PathLike[str] | None = None,
        namespace: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        allow_http: bool = False,
        transport: Any = None,
    ) -> None:
        if not isinstance(address, str) or not address.strip():
            raise ConfigurationError("address is required, e.g. https://vault.example:8200")
        address = address.strip().rstrip("/")
        parts = urlsplit(address)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ConfigurationError(
                f"address must be an https:// URL with a host, e.g. https://vault.example:8200 (scheme: {parts.scheme or 'none'})"
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ConfigurationError("address must not carry credentials, a query or a fragment")
        if parts.scheme == "http" and not allow_http:
            raise ConfigurationError(
                "refusing plain http to Vault: the token would travel in clear; "
                "use https, or pass allow_http=True (VAULT_ALLOW_HTTP=true) for a local dev server"
            )
        mount = (mount or "").strip("/") if isinstance(mount, str) else ""
        if not all(_MOUNT_SEGMENT.fullmatch(seg) and seg not in (".", "..") for seg in mount.split("/")):
            raise ConfigurationError(f"mount {mount!r} is not a Vault mount path such as mastio-ca")
        try:
            timeout = float(timeout)
        except (TypeError, ValueError):
            raise ConfigurationError("timeout must be a positive number of seconds") from None
        if not timeout > 0:
            raise ConfigurationError("timeout must be a positive number of seconds")
        if token is not None and (not isinstance(token, str) or any(c in token for c in "\r\n")):
            raise ConfigurationError("token must be a single-line string")

        self.address = address
        self.mount = mount
        self.namespace = namespace or None
        self.timeout = timeout
        self._base_url = f"{address}/v1/{mount}/"
        headers = {"X-Vault-Request": "true"}
        if token:
            headers["X-Vault-Token"] = token
        if self.namespace:
            headers["X-Vault-Namespace"] = self.namespace
        self._headers = headers
        self._verify: bool | ssl.SSLContext
        if ca_cert:
            try:
                self._verify = ssl.create_default_context(cafile=os.fspath(ca_cert))
            except (OSError, ssl.SSLError) as e:
                raise ConfigurationError(f"cannot load the CA bundle {os.fspath(ca_cert)!r}: {e.strerror or e}") from None
        else:
            self._verify = bool(verify)
        self._transport = transport

    def __repr__(self) -> str:  # never the token
        return f"{type(self).__name__}(address={self.address!r}, mount={self.mount!r}, namespace={self.namespace!r})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """A client configured from Mastio's environment variables.

        ``MCP_PROXY_VAULT_ADDR`` (required), ``MCP_PROXY_VAULT_TOKEN``,
        ``MCP_PROXY_VAULT_CA_CERT_PATH`` (wins over the verify flag),
        ``MCP_PROXY_VAULT_VERIFY_TLS`` (default true),
        ``MCP_PROXY_VAULT_NAMESPACE``, ``VAULT_ALLOW_HTTP`` (default false)
        and ``MASTIO_CA_MOUNT`` (default ``mastio-ca``). Keyword arguments
        override what the environment says.
        """
        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = {
            "address": env.get("MCP_PROXY_VAULT_ADDR", ""),
            "token": env.get("MCP_PROXY_VAULT_TOKEN") or None,
            "ca_cert": env.get("MCP_PROXY_VAULT_CA_CERT_PATH") or None,
            "verify": _env_bool(env, "MCP_PROXY_VAULT_VERIFY_TLS", True),
            "namespace": env.get("MCP_PROXY_VAULT_NAMESPACE") or None,
            "allow_http": _env_bool(env, "VAULT_ALLOW_HTTP", False),
            "mount": env.get("MASTIO_CA_MOUNT") or DEFAULT_MOUNT,
        }
        kwargs.update(overrides)
        if not kwargs["address"]:
            raise ConfigurationError("MCP_PROXY_VAULT_ADDR is not set: where is Vault?")
        return cls(**kwargs)

    def _http_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "base_url": self._base_url,
            "headers": self._headers,
            "verify": self._verify,
            "timeout": self.timeout,
            "follow_redirects": False,
        }
        if self._transport is not None:
            opts["transport"] = self._transport
        return opts

    @staticmethod
    def _prepare(call: calls.Call[Any]) -> dict[str, Any]:
        calls.check_path(call.path)
        req: dict[str, Any] = {"method": call.method, "url": call.path}
        if call.body is not None:
            req["json"] = call.body
        return req

    @staticmethod
    def _transport_error(call: calls.Call[Any], exc: Exception) -> TransportError:
        # httpx's messages name the failure (refused, timed out, TLS), never the body.
        kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "could not reach Vault"
        return TransportError(call.operation, None, (), f"{kind} ({type(exc).__name__}: {exc})")

    @staticmethod
    def _finish(call: calls.Call[T], resp: httpx.Response) -> T:
        try:
            payload = resp.json() if resp.content else None
        except ValueError:
            payload = None
        if 300 <= resp.status_code < 400:
            # A standby's redirect to the active node: not followed, so the
            # token is never sent to an address the caller did not configure.
            raise MastioCAError(
                call.operation, resp.status_code, (),
                "Vault answered with a redirect (a standby node?); set the address to the active node or its load balancer",
            )
        if resp.status_code >= 400 or resp.status_code < 200:
            messages: list[str] = []
            if isinstance(payload, Mapping) and isinstance(payload.get("errors"), list):
                messages = [str(e) for e in payload["errors"]]
            detail = None
            if not messages:
                ctype = resp.headers.get("content-type", "none")
                detail = f"no Vault error message (content-type {ctype}, {len(resp.content)} bytes)"
            raise error_for(call.operation, resp.status_code, redact(messages, call.body), detail)
        if call.raw:
            return call.parse(call.operation, _raw_text(call, resp))
        if not isinstance(payload, Mapping) or not isinstance(payload.get("data"), Mapping):
            raise MastioCAError(
                call.operation, resp.status_code, (), "unexpected answer from Vault: no data object"
            )
        return call.parse(call.operation, payload["data"])


def _raw_text(call: calls.Call[Any], resp: httpx.Response) -> str:
    """The body of a raw answer (crl/pem): PEM text, as its content type says."""
    ctype = resp.headers.get("content-type", "")
    if ctype.split(";")[0].strip().lower() != "application/x-pem-file":
        raise MastioCAError(
            call.operation, resp.status_code, (),
            f"unexpected answer from Vault: content-type {ctype or 'none'}, not application/x-pem-file",
        )
    try:
        return resp.content.decode("ascii")
    except UnicodeDecodeError:
        raise MastioCAError(call.operation, resp.status_code, (), "unexpected answer from Vault: the PEM is not ASCII") from None


class MastioCA(_Base):
    """Synchronous client of the mastio-ca plugin (``httpx.Client``).

    For Mastio's synchronous signing functions (S2, S10, S11, S13, S14).
    Use as a context manager, or call :meth:`close`. Same methods as
    :class:`AsyncMastioCA`.

    Args:
        address: Vault's address, e.g. ``https://vault.example:8200``.
        token: sent as ``X-Vault-Token``; reading the CA certificates needs none.
        mount: where the plugin is mounted (default ``mastio-ca``).
        verify: check Vault's TLS certificate (default True).
        ca_cert: path of a CA bundle to check it with (wins over ``verify``).
        namespace: sent as ``X-Vault-Namespace`` (Vault Enterprise).
        timeout: seconds per request (default 10, as Mastio's provider).
        allow_http: permit a plain ``http://`` address (dev servers only).
        transport: an ``httpx`` transport to use instead of the network.
    """

    def __init__(self, address: str, token: str | None = None, **kwargs: Any) -> None:
        super().__init__(address, token, **kwargs)
        self._http = httpx.Client(**self._http_options())

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, call: calls.Call[T]) -> T:
        req = self._prepare(call)
        try:
            resp = self._http.request(**req)
        except httpx.RequestError as e:
            raise self._transport_error(call, e) from None
        return self._finish(call, resp)

    def org_ca(self) -> m.CACertificate:
        """The Org CA certificate and metadata (``GET cert``). :class:`NotFound` before ``generate``."""
        return self._run(calls.org_ca())

    def intermediate(self) -> m.Intermediate:
        """The Mastio Intermediate CA with ``bundle``, and ``previous``/``retired`` during a grace."""
        return self._run(calls.intermediate())

    def generate(
        self,
        *,
        org_id: str | None = None,
        common_name: str | None = None,
        key_type: str | None = None,
        key_bits: int | None = None,
        ttl: calls.Duration | None = None,
        path_len: int | None = None,
        cas: int | None = None,
    ) -> m.CACertificate:
        """Mint the Org CA inside Vault (S1; S2/S13 with ``key_type="rsa", key_bits=4096, cas=``).

        Create-only: :class:`Conflict` when a CA exists and ``cas`` is not
        its ``version``. Defaults: EC P-256, ``"<org_id> CA"``, 15 years, pathLen 1.
        """
        return self._run(calls.generate(org_id=org_id, common_name=common_name, key_type=key_type,
                                        key_bits=key_bits, ttl=ttl, path_len=path_len, cas=cas))

    def generate_intermediate(
        self,
        *,
        key_type: str | None = None,
        key_bits: int | None = None,
        ttl: calls.Duration | None = None,
        common_name: str | None = None,
        cas: int | None = None,
    ) -> m.Intermediate:
        """Mint the Mastio Intermediate CA inside Vault, signed there by the Org CA (S3). Create-only."""
        return self._run(calls.generate_intermediate(key_type=key_type, key_bits=key_bits, ttl=ttl,
                                                     common_name=common_name, cas=cas))

    def rotate_intermediate(
        self,
        grace_days: int | None = 14,
        dry_run: bool = False,
        cas: int | None = None,
        *,
        key_type: str | None = None,
        key_bits: int | None = None,
        ttl: calls.Duration | None = None,
    ) -> m.Rotation:
        """Replace the intermediate (S4) and return the new one with the continuity proof (S5).

        ``grace_days`` (1-90, Mastio's range) is how long the old one stays
        published; ``None`` leaves it to the plugin (14 days) and sends
        nothing, for tokens that may send only ``cas``. ``dry_run=True``
        returns the would-be certificate and proof and stores nothing.
        """
        return self._run(calls.rotate_intermediate(grace_days=grace_days, dry_run=dry_run, cas=cas,
                                                   key_type=key_type, key_bits=key_bits, ttl=ttl))

    def sign_csr(self, role: str, csr_pem: calls.PEM, ttl: calls.Duration | None = None) -> m.SignedCertificate:
        """Sign a PEM CSR under ``role`` (S9 ``mastio-server``, S12 ``principal``).

        :class:`PolicyRefused` says which rule of the role the CSR broke.
        """
        return self._run(calls.sign_csr(role, csr_pem, ttl))

    def sign_csr_batch(
        self, role: str, csrs: Iterable[calls.PEM], ttl: calls.Duration | None = None
    ) -> m.BatchResult:
        """Sign 1-100 CSRs under one role; a refused CSR fails only its own entry."""
        return self._run(calls.sign_csr_batch(role, csrs, ttl))

    def sign_public_key(
        self,
        role: str,
        public_key_pem: calls.PEM,
        name: str | None = None,
        spiffe_id: str | None = None,
        ttl: calls.Duration | None = None,
    ) -> m.SignedCertificate:
        """Sign a bare PEM public key (SPKI) under ``role``, for ``name`` or ``spiffe_id``.

        S10/S11: role ``agent`` with ``name=<agent_id>``; S6-S8: role
        ``mastio-leaf`` with ``spiffe_id=spiffe://<td>/proxy/<org_id>``.
        Proof of possession of the private key is the caller's job.
        """
        return self._run(calls.sign_public_key(role, public_key_pem, name, spiffe_id, ttl))

    def sign_public_key_batch(
        self,
        role: str,
        requests: Iterable[m.PublicKeyRequest | Mapping[str, Any]],
        ttl: calls.Duration | None = None,
    ) -> m.BatchResult:
        """Sign 1-100 public keys under one role (S14: re-sign every agent after a new Org CA)."""
        return self._run(calls.sign_public_key_batch(role, requests, ttl))

    def health(self) -> m.Health:
        """The plugin's version, counters and days left on each CA (needs a token)."""
        return self._run(calls.health())

    def revoke(self, certificate_pem: calls.PEM, reason: str = "unspecified") -> m.Revocation:
        """Revoke a certificate this mount issued (``revoke``): its issuer's CRL and OCSP list it at once.

        ``reason`` is an RFC 5280 name (``keyCompromise``, ``superseded``,
        ``cessationOfOperation``, ... or snake_case ``key_compromise``),
        checked before sending. Idempotent: revoking again returns the
        first revocation with ``already_revoked=True``. A certificate the
        mount did not issue, one of its own CAs, or an expired one is
        :class:`InvalidRequest` (400). Needs ``policies/mastio-revoker.hcl``.
        """
        return self._run(calls.revoke(certificate_pem, reason))

    def revoke_serial(
        self,
        serial_number: str | int,
        issuer: str,
        not_after: _dt.datetime,
        reason: str = "unspecified",
    ) -> m.Revocation:
        """Revoke by serial, for a caller that kept only the serial (``revoke``).

        ``serial_number`` in hex as sign-csr returns it (or an int);
        ``issuer`` is ``org-ca``, ``intermediate-ca`` or an issuer key id
        (``Revocation.issuer_id``); ``not_after`` the certificate's NotAfter,
        timezone-aware (``SignedCertificate.not_after``). Otherwise as :meth:`revoke`.
        """
        return self._run(calls.revoke_serial(serial_number, issuer, not_after, reason))

    def crl_pem(self) -> str:
        """The complete CRL, PEM, of the CA that signs leaves now (``crl/pem``; no token needed)."""
        return self._run(calls.crl_pem())


class AsyncMastioCA(_Base):
    """Asynchronous client of the mastio-ca plugin (``httpx.AsyncClient``).

    Same arguments and methods as :class:`MastioCA`, each a coroutine. Use
    ``async with``, or await :meth:`aclose`.
    """

    def __init__(self, address: str, token: str | None = None, **kwargs: Any) -> None:
        super().__init__(address, token, **kwargs)
        self._http = httpx.AsyncClient(**self._http_options())

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _run(self, call: calls.Call[T]) -> T:
        req = self._prepare(call)
        try:
            resp = await self._http.request(**req)
        except httpx.RequestError as e:
            raise self._transport_error(call, e) from None
        return self._finish(call, resp)

    async def org_ca(self) -> m.CACertificate:
        """The Org CA certificate and metadata; see :meth:`MastioCA.org_ca`."""
        return await self._run(calls.org_ca())

    async def intermediate(self) -> m.Intermediate:
        """The intermediate with bundle and grace; see :meth:`MastioCA.intermediate`."""
        return await self._run(calls.intermediate())

    async def generate(
        self,
        *,
        org_id: str | None = None,
        common_name: str | None = None,
        key_type: str | None = None,
        key_bits: int | None = None,
        ttl: calls.Duration | None = None,
        path_len: int | None = None,
        cas: int | None = None,
    ) -> m.CACertificate:
        """Mint the Org CA inside Vault; see :meth:`MastioCA.generate`."""
        return await self._run(calls.generate(org_id=org_id, common_name=common_name, key_type=key_type,
                                              key_bits=key_bits, ttl=ttl, path_len=path_len, cas=cas))

    async def generate_intermediate(
        self,
        *,
        key_type: str | None = None,
        key_bits: int | None = None,
        ttl: calls.Duration | None = None,
        common_name: str | None = None,
        cas: int | None = None,
    ) -> m.Intermediate:
        """Mint the intermediate inside Vault; see :meth:`MastioCA.generate_intermediate`."""
        return await self._run(calls.generate_intermediate(key_type=key_type, key_bits=key_bits, ttl=ttl,
                                                           common_name=common_name, cas=cas))

    async def rotate_intermediate(
        self,
        grace_days: int | None = 14,
        dry_run: bool = False,
        cas: int | None = None,
        *,
        key_type: str | None = None,
        key_bits: int | None = None,
        ttl: calls.Duration | None = None,
    ) -> m.Rotation:
        """Rotate the intermediate; see :meth:`MastioCA.rotate_intermediate`."""
        return await self._run(calls.rotate_intermediate(grace_days=grace_days, dry_run=dry_run, cas=cas,
                                                         key_type=key_type, key_bits=key_bits, ttl=ttl))

    async def sign_csr(
        self, role: str, csr_pem: calls.PEM, ttl: calls.Duration | None = None
    ) -> m.SignedCertificate:
        """Sign a CSR under a role; see :meth:`MastioCA.sign_csr`."""
        return await self._run(calls.sign_csr(role, csr_pem, ttl))

    async def sign_csr_batch(
        self, role: str, csrs: Iterable[calls.PEM], ttl: calls.Duration | None = None
    ) -> m.BatchResult:
        """Sign 1-100 CSRs; see :meth:`MastioCA.sign_csr_batch`."""
        return await self._run(calls.sign_csr_batch(role, csrs, ttl))

    async def sign_public_key(
        self,
        role: str,
        public_key_pem: calls.PEM,
        name: str | None = None,
        spiffe_id: str | None = None,
        ttl: calls.Duration | None = None,
    ) -> m.SignedCertificate:
        """Sign a bare public key; see :meth:`MastioCA.sign_public_key`."""
        return await self._run(calls.sign_public_key(role, public_key_pem, name, spiffe_id, ttl))

    async def sign_public_key_batch(
        self,
        role: str,
        requests: Iterable[m.PublicKeyRequest | Mapping[str, Any]],
        ttl: calls.Duration | None = None,
    ) -> m.BatchResult:
        """Sign 1-100 public keys; see :meth:`MastioCA.sign_public_key_batch`."""
        return await self._run(calls.sign_public_key_batch(role, requests, ttl))

    async def health(self) -> m.Health:
        """The plugin's health; see :meth:`MastioCA.health`."""
        return await self._run(calls.health())

    async def revoke(self, certificate_pem: calls.PEM, reason: str = "unspecified") -> m.Revocation:
        """Revoke a certificate this mount issued; see :meth:`MastioCA.revoke`."""
        return await self._run(calls.revoke(certificate_pem, reason))

    async def revoke_serial(
        self,
        serial_number: str | int,
        issuer: str,
        not_after: _dt.datetime,
        reason: str = "unspecified",
    ) -> m.Revocation:
        """Revoke by serial, issuer and NotAfter; see :meth:`MastioCA.revoke_serial`."""
        return await self._run(calls.revoke_serial(serial_number, issuer, not_after, reason))

    async def crl_pem(self) -> str:
        """The current issuer's CRL in PEM; see :meth:`MastioCA.crl_pem`."""
        return await self._run(calls.crl_pem())

