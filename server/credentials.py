"""TLS certificates for the SuperLink and authentication keys for SuperNodes.

Flower 1.41's security model (see docs/federation.md, "Deployment"):

* **TLS is server-side.** The central team's certificate authority signs the SuperLink's
  certificate; every SuperNode and the ``flwr`` CLI hold only the CA certificate
  (``ca.crt``) and check the SuperLink against it.
* **SuperNodes prove who they are with a key pair.** Each site makes its own OpenSSH ECDSA
  P-384 key pair (Flower rejects PEM, ed25519 and RSA keys) and sends only the public half to
  the central team, who registers it (``flwr supernode register``). The private key never
  leaves the site.

Private keys are written with mode 0600, through a temporary file renamed into place, and an
existing file is never overwritten: a re-run cannot silently replace the credentials a
running federation depends on.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pathloop.server.errors import FederationError

#: Names the SuperLink's certificate is valid for on one machine.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class ServerCredentials:
    """The files the SuperLink (and, for ``ca_certificate`` only, everyone else) reads."""

    ca_certificate: Path
    ca_key: Path
    certificate: Path
    key: Path

    @classmethod
    def in_folder(cls, folder: Path) -> ServerCredentials:
        return cls(folder / "ca.crt", folder / "ca.key", folder / "server.pem",
                   folder / "server.key")

    def check(self) -> None:
        """Raise :class:`FederationError` naming the first missing file."""
        for path in (self.ca_certificate, self.certificate, self.key):
            if not path.is_file():
                raise FederationError(f"{path}: missing (make it with `pathloop server "
                                      "credentials`)")


@dataclass(frozen=True)
class NodeKey:
    """A SuperNode's key pair: ``private`` stays at the site, ``public`` is registered."""

    private: Path
    public: Path

    @classmethod
    def in_folder(cls, folder: Path, name: str) -> NodeKey:
        return cls(folder / name, folder / f"{name}.pub")


def make_server_credentials(folder: Path, hosts: tuple[str, ...] = LOOPBACK_HOSTS,
                            days: int = 825) -> ServerCredentials:
    """A CA and a SuperLink certificate it signed, valid for ``hosts`` (names or IPs)."""
    if not hosts:
        raise FederationError("the SuperLink certificate needs at least one host name")
    credentials = ServerCredentials.in_folder(folder)
    _refuse_existing(credentials.ca_certificate, credentials.ca_key, credentials.certificate,
                     credentials.key)
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    until = now + datetime.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pathloop federation CA")])
    ca_certificate = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA384()))

    server_key = ec.generate_private_key(ec.SECP384R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name).public_key(server_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(until)
        .add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA384()))

    _write_private(credentials.ca_key, _pem_key(ca_key))
    _write_private(credentials.key, _pem_key(server_key))
    _write_public(credentials.ca_certificate,
                  ca_certificate.public_bytes(serialization.Encoding.PEM))
    _write_public(credentials.certificate, certificate.public_bytes(serialization.Encoding.PEM))
    return credentials


def make_node_key(folder: Path, name: str) -> NodeKey:
    """A SuperNode key pair named ``name`` (OpenSSH ECDSA P-384, as Flower expects)."""
    if not _NODE_NAME.match(name):
        raise FederationError(f"node key name {name!r}: use letters, digits, '.', '_' or '-'")
    node_key = NodeKey.in_folder(folder, name)
    _refuse_existing(node_key.private, node_key.public)
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    _write_private(node_key.private, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH)
    _write_public(node_key.public, public + f" {name}\n".encode())
    return node_key


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _refuse_existing(*paths: Path) -> None:
    for path in paths:
        if path.exists():
            raise FederationError(f"{path}: already exists; credentials are never "
                                  "overwritten (move the old ones away first)")


def _write_private(path: Path, data: bytes) -> None:
    _write(path, data, 0o600)


def _write_public(path: Path, data: bytes) -> None:
    _write(path, data, 0o644)


def _write(path: Path, data: bytes, mode: int) -> None:
    partial = path.with_name(f".{path.name}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


__all__ = ["LOOPBACK_HOSTS", "NodeKey", "ServerCredentials", "make_node_key",
           "make_server_credentials"]
