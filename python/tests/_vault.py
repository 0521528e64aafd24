"""A real Vault dev server with the mastio-ca plugin, as scripts/dev.sh and
internal/testvault start it: the binaries from $VAULT_BIN and
$MASTIO_CA_PLUGIN (default bin/ of the repository), the plugin copied into
a temporary plugin_directory and registered by SHA-256, a free loopback
port, a random root token. The server dies with the test process."""

from __future__ import annotations

import ctypes
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
PLUGIN_BINARY = "vault-plugin-mastio-ca"
PLUGIN_NAME = "mastio-ca"


def _free_port_pair() -> int:
    """A loopback port p with p+1 free too (the dev server's cluster port)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free pair of loopback ports")


def _die_with_parent() -> None:  # runs in the child before exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class VaultServer:
    """A running dev server. ``admin`` is an httpx client with the root token."""

    def __init__(self) -> None:
        self.vault_bin = Path(os.environ.get("VAULT_BIN") or REPO / "bin" / "vault")
        self.plugin_bin = Path(os.environ.get("MASTIO_CA_PLUGIN") or REPO / "bin" / PLUGIN_BINARY)
        for what, p, make, env in (("Vault server", self.vault_bin, "make bin/vault", "VAULT_BIN"),
                                   ("mastio-ca plugin", self.plugin_bin, "make plugin", "MASTIO_CA_PLUGIN")):
            if not os.access(p, os.X_OK):
                raise RuntimeError(f"no {what} binary at {p}: run `{make}` (or set {env})")
        self.dir = Path(tempfile.mkdtemp(prefix="mastio-ca-pytest-"))
        self.proc: subprocess.Popen | None = None
        self._log = None
        self.admin: httpx.Client | None = None

    def start(self) -> None:
        plugins = self.dir / "plugins"
        plugins.mkdir()
        shutil.copy2(self.plugin_bin, plugins / PLUGIN_BINARY)
        self.plugin_sha = hashlib.sha256((plugins / PLUGIN_BINARY).read_bytes()).hexdigest()
        cfg = self.dir / "vault.hcl"
        cfg.write_text(f'plugin_directory = "{plugins}"\ndisable_mlock = true\n')
        self.port = _free_port_pair()
        self.addr = f"http://127.0.0.1:{self.port}"
        self.token = "root-" + secrets.token_hex(8)
        self.log_path = self.dir / "vault.log"
        self._log = open(self.log_path, "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
        env["HOME"] = str(self.dir)
        self.env = env
        self.proc = subprocess.Popen(
            [str(self.vault_bin), "server", "-dev", f"-dev-root-token-id={self.token}",
             f"-dev-listen-address=127.0.0.1:{self.port}", "-dev-no-store-token", f"-config={cfg}"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env,
            preexec_fn=_die_with_parent,
        )
        self.admin = httpx.Client(base_url=f"{self.addr}/v1/", headers={"X-Vault-Token": self.token}, timeout=30)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vault exited during start-up:\n{self.tail()}")
            try:
                h = self.admin.get("sys/health")
                if h.status_code == 200 and h.json().get("initialized") and not h.json().get("sealed"):
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"vault did not become healthy within 60s:\n{self.tail()}")
            time.sleep(0.05)
        # Register with the CLI, as an operator (and scripts/dev.sh) would.
        self.cli("plugin", "register", f"-sha256={self.plugin_sha}", f"-command={PLUGIN_BINARY}",
                 "secret", PLUGIN_NAME)

    def cli(self, *args: str) -> str:
        env = dict(self.env, VAULT_ADDR=self.addr, VAULT_TOKEN=self.token)
        r = subprocess.run([str(self.vault_bin), *args], env=env, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"vault {' '.join(args[:2])} failed: {r.stderr.strip()}")
        return r.stdout

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.admin is not None:
            self.admin.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- admin helpers (plain httpx with the root token, not the package) ----

    def call(self, method: str, path: str, json=None, token: str | None = None, ok=(200, 204)) -> dict:
        headers = {"X-Vault-Token": token} if token is not None else None
        r = self.admin.request(method, path, json=json, headers=headers)
        if r.status_code not in ok:
            raise AssertionError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r.json() if r.content else {}

    def enable(self, mount: str) -> None:
        self.call("POST", f"sys/mounts/{mount}", {"type": PLUGIN_NAME})

    def disable(self, mount: str) -> None:
        self.call("DELETE", f"sys/mounts/{mount}")

    def token_with(self, *policies: str, ttl: str = "10m") -> str:
        out = self.call("POST", "auth/token/create", {"policies": list(policies) or ["default"], "ttl": ttl})
        return out["auth"]["client_token"]
