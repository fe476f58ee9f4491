"""Certificates and kubeconfigs for the local control plane (made with `cryptography`).

A serving CA and the apiserver's serving certificate, a client CA and the admin client
certificate (group system:masters), and the service-account signing key.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files the processes and kubeconfigs use."""

    serving_ca: Path
    serving_cert: Path
    serving_key: Path
    client_ca: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path
    sa_pub: Path


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    *,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    usage: x509.ObjectIdentifier | None = None,
    sans: Sequence[x509.GeneralName] = (),
) -> x509.Certificate:
    """A CA certificate (``issuer`` None: self-signed) or a leaf signed by ``issuer``.

    Subject/authority key identifiers are included because strict verifiers (Python 3.13's
    default context) reject chains without them.
    """
    now = dt.datetime.now(dt.UTC)
    is_ca = issuer is None
    issuer_name = subject if issuer is None else issuer[0].subject
    signing_key = key if issuer is None else issuer[1]
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()),
            critical=False,
        )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def write_pki(pki_dir: Path) -> Pki:
    """Generate every certificate and key the control plane needs into ``pki_dir``."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    pki = Pki(
        serving_ca=pki_dir / "serving-ca.crt",
        serving_cert=pki_dir / "apiserver.crt",
        serving_key=pki_dir / "apiserver.key",
        client_ca=pki_dir / "client-ca.crt",
        admin_cert=pki_dir / "admin.crt",
        admin_key=pki_dir / "admin.key",
        sa_key=pki_dir / "service-account.key",
        sa_pub=pki_dir / "service-account.pub",
    )

    def new_key() -> ec.EllipticCurvePrivateKey:
        # P-256 keys take microseconds to generate; RSA would cost ~0.1 s each.
        return ec.generate_private_key(ec.SECP256R1())

    def write(path: Path, data: bytes, *, secret: bool = False) -> None:
        path.write_bytes(data)
        if secret:
            path.chmod(0o600)

    pem = serialization.Encoding.PEM
    serving_ca_key = new_key()
    serving_ca = _certificate(_name("opscore-serving-ca"), serving_ca_key, issuer=None)
    serving_key = new_key()
    serving_cert = _certificate(
        _name("kube-apiserver"),
        serving_key,
        issuer=(serving_ca, serving_ca_key),
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        sans=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))],
    )
    client_ca_key = new_key()
    client_ca = _certificate(_name("opscore-client-ca"), client_ca_key, issuer=None)
    admin_key = new_key()
    admin_cert = _certificate(
        # O=system:masters is the group RBAC lets do everything, with no binding needed.
        _name("opscore-admin", "system:masters"),
        admin_key,
        issuer=(client_ca, client_ca_key),
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    # RS256 is what every token verifier accepts, so the service-account key is RSA.
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    write(pki.serving_ca, serving_ca.public_bytes(pem))
    write(pki.serving_cert, serving_cert.public_bytes(pem))
    write(pki.serving_key, _key_pem(serving_key), secret=True)
    write(pki.client_ca, client_ca.public_bytes(pem))
    write(pki.admin_cert, admin_cert.public_bytes(pem))
    write(pki.admin_key, _key_pem(admin_key), secret=True)
    write(pki.sa_key, _key_pem(sa_key), secret=True)
    write(
        pki.sa_pub,
        sa_key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo),
    )
    return pki


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def write_kubeconfig(
    path: Path, *, server: str, ca: Path, user_name: str, user: dict[str, str]
) -> Path:
    """Write a self-contained kubeconfig (certificates inlined) so it can be copied anywhere."""
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "opscore",
                "cluster": {"server": server, "certificate-authority-data": b64(ca)},
            }
        ],
        "users": [{"name": user_name, "user": user}],
        "contexts": [{"name": user_name, "context": {"cluster": "opscore", "user": user_name}}],
        "current-context": user_name,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


# --------------------------------------------------------------------------------------------
# The control plane
# --------------------------------------------------------------------------------------------
