"""Turn a kubeconfig (or the in-cluster service account) into the client's settings.

Parsing kubeconfig files is left to the official `kubernetes` package, which knows every
variant (client certificates, tokens, exec plugins); we only take the result.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config


@dataclass(slots=True)
class Connection:
    """Server URL, TLS context and how to authenticate to it."""

    server: str
    ssl_context: ssl.SSLContext | bool
    token_file: Path | None = None
    static_token: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def auth_header(self) -> str | None:
        """The Authorization header; re-reads a projected token file so rotation works."""
        if self.token_file is not None:
            return "Bearer " + self.token_file.read_text().strip()
        if self.static_token:
            return self.static_token
        return None


_SA_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def load_connection(kubeconfig: str | None = None, *, context: str | None = None) -> Connection:
    """Load from `kubeconfig` (or $KUBECONFIG / ~/.kube/config), else the in-cluster account."""
    cfg = k8s_client.Configuration()
    in_cluster = False
    try:
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=cfg
        )
    except k8s_config.ConfigException:
        if kubeconfig:
            raise
        k8s_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        in_cluster = True

    ctx: ssl.SSLContext | bool
    if cfg.verify_ssl:
        ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert) if cfg.ssl_ca_cert else True
        if cfg.cert_file and cfg.key_file:
            if ctx is True:
                ctx = ssl.create_default_context()
            assert isinstance(ctx, ssl.SSLContext)
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    else:
        ctx = False

    token = cfg.api_key.get("authorization") or cfg.api_key.get("BearerToken")
    if token and not token.lower().startswith("bearer "):
        token = f"Bearer {token}"
    return Connection(
        server=cfg.host.rstrip("/"),
        ssl_context=ctx,
        token_file=_SA_TOKEN if in_cluster and _SA_TOKEN.exists() else None,
        static_token=token,
    )
