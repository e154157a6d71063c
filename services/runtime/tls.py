"""A private certificate authority and per-service certificates for mesh mTLS.

Every service presents a leaf certificate issued by one private CA and trusts only that CA,
so a peer's certificate proves it belongs to the mesh and its SAN names which service it is.

Files in the certificate directory:

    ca.pem, ca.key                  the CA (the key only where certificates are issued)
    <identity>.pem, <identity>.key  a service's leaf certificate and key

The CA is made once and reused; a leaf is (re)issued when missing, issued by another CA,
for another name, or close to expiry. A lock file serialises this, because on a local start
every service comes up at once against the same directory.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = dt.timedelta(days=3650)
LEAF_VALIDITY = dt.timedelta(days=90)
# A leaf this close to expiry is reissued at start, so a running service never sees it lapse
# between restarts of an ordinary week.
LEAF_RENEW_BEFORE = dt.timedelta(days=14)
# Backdating absorbs small clock differences between the host issuing and the host verifying.
CLOCK_SKEW = dt.timedelta(minutes=5)

# Names every leaf carries besides its identity, so that dialling a local process by
# "localhost" or 127.0.0.1 verifies. They are never taken as an identity (see identity.py).
LOCAL_DNS_NAMES: tuple[str, ...] = ("localhost",)
LOCAL_IPS: tuple[str, ...] = ("127.0.0.1",)

# An identity is one DNS label or a dotted DNS name: it must be a valid dNSName SAN and a
# safe file name.
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_IDENTITY_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")


class CertificateError(RuntimeError):
    """Certificates cannot be made or loaded; the message says which file and why."""


@dataclass(frozen=True)
class CertificateAuthority:
    """The mesh CA: its certificate, and its key when this process may issue certificates."""

    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey | None

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class ServiceCredentials:
    """PEM material for one identity: what gRPC credentials are built from."""

    identity: str
    ca_pem: bytes
    cert_pem: bytes
    # repr=False: a private key must never reach a log line or a traceback.
    key_pem: bytes = field(repr=False)


def validate_identity(identity: str) -> str:
    if not _IDENTITY_RE.fullmatch(identity):
        raise CertificateError(
            f"invalid service identity {identity!r}: use lower-case DNS labels "
            "(letters, digits, '-', dots between labels)"
        )
    return identity


def ensure_ca(cert_dir: Path, *, common_name: str = "ampmesh private CA") -> CertificateAuthority:
    """Load the CA from cert_dir, creating it (and the directory) the first time."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    with _locked(cert_dir):
        return _ensure_ca_locked(cert_dir, common_name)


def load_ca(cert_dir: Path) -> CertificateAuthority:
    """Load an existing CA without creating anything (its key is optional)."""
    cert_path, key_path = cert_dir / "ca.pem", cert_dir / "ca.key"
    if not cert_path.exists():
        raise CertificateError(f"{cert_path}: CA certificate not found")
    cert = _read_cert(cert_path)
    key = _read_key(key_path) if key_path.exists() else None
    return CertificateAuthority(cert, key)


def issue_certificate(
    ca: CertificateAuthority,
    identity: str,
    *,
    validity: dt.timedelta = LEAF_VALIDITY,
    now: dt.datetime | None = None,
) -> tuple[bytes, bytes]:
    """Issue a leaf for identity; returns (cert_pem, key_pem).

    The leaf works for both ends of mTLS (serverAuth and clientAuth), since every service
    both serves and calls other services with the same certificate.
    """
    validate_identity(identity)
    if ca.private_key is None:
        raise CertificateError("the CA key is not available here: cannot issue certificates")
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(identity)]
    sans += [x509.DNSName(n) for n in LOCAL_DNS_NAMES if n != identity]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in LOCAL_IPS]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + validity)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.certificate.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca.private_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def ensure_service_credentials(
    cert_dir: Path, identity: str, *, create: bool = True
) -> ServiceCredentials:
    """Return the credentials for identity, making the CA and the leaf when needed.

    With create=False (certificates provisioned by someone else), the files must exist and
    be valid, or CertificateError says which one is wrong.
    """
    validate_identity(identity)
    if not create:
        return _load_valid(cert_dir, identity, load_ca(cert_dir))
    cert_dir.mkdir(parents=True, exist_ok=True)
    with _locked(cert_dir):
        ca = _ensure_ca_locked(cert_dir, "ampmesh private CA")
        try:
            return _load_valid(cert_dir, identity, ca)
        except CertificateError:
            cert_pem, key_pem = issue_certificate(ca, identity)
            _write_private(cert_dir / f"{identity}.key", key_pem)
            _write_public(cert_dir / f"{identity}.pem", cert_pem)
            return ServiceCredentials(identity, ca.cert_pem, cert_pem, key_pem)


def server_credentials(creds: ServiceCredentials) -> grpc.ServerCredentials:
    """Server side of mTLS: present our leaf, require a client certificate from our CA."""
    return grpc.ssl_server_credentials(
        [(creds.key_pem, creds.cert_pem)],
        root_certificates=creds.ca_pem,
        require_client_auth=True,
    )


def channel_credentials(creds: ServiceCredentials) -> grpc.ChannelCredentials:
    """Client side of mTLS: trust only our CA, present our leaf."""
    return grpc.ssl_channel_credentials(
        root_certificates=creds.ca_pem,
        private_key=creds.key_pem,
        certificate_chain=creds.cert_pem,
    )


# --- internals -------------------------------------------------------------------------


def _ensure_ca_locked(cert_dir: Path, common_name: str) -> CertificateAuthority:
    cert_path, key_path = cert_dir / "ca.pem", cert_dir / "ca.key"
    if cert_path.exists():
        return load_ca(cert_dir)
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CA_VALIDITY)
        # path_length=0: this CA signs leaves only, never intermediate CAs.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA384())
    )
    # Key first: a ca.pem without its key would make later starts believe the CA is complete.
    _write_private(key_path, _key_pem(key))
    _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return CertificateAuthority(cert, key)


def _load_valid(cert_dir: Path, identity: str, ca: CertificateAuthority) -> ServiceCredentials:
    cert_path, key_path = cert_dir / f"{identity}.pem", cert_dir / f"{identity}.key"
    if not cert_path.exists() or not key_path.exists():
        raise CertificateError(f"{cert_path}: certificate or key for {identity!r} not found")
    cert = _read_cert(cert_path)
    key = _read_key(key_path)
    problem = _leaf_problem(cert, key, identity, ca)
    if problem:
        raise CertificateError(f"{cert_path}: {problem}")
    return ServiceCredentials(
        identity, ca.cert_pem, cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)
    )


def _leaf_problem(
    cert: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    identity: str,
    ca: CertificateAuthority,
) -> str | None:
    """Why this leaf cannot be used for identity, or None when it can."""
    if cert.issuer != ca.certificate.subject:
        return "not issued by the current CA"
    try:
        cert.verify_directly_issued_by(ca.certificate)
    except (ValueError, TypeError, InvalidSignature):
        return "signature does not verify against the current CA"
    if cert.public_key() != key.public_key():
        return "certificate and key do not match"
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "no subjectAltName"
    if identity not in names.get_values_for_type(x509.DNSName):
        return f"subjectAltName does not name {identity!r}"
    if cert.not_valid_after_utc - LEAF_RENEW_BEFORE < dt.datetime.now(dt.UTC):
        return "expires soon"
    return None


def _read_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        reason = type(exc).__name__
        raise CertificateError(f"{path}: not a readable PEM certificate ({reason})") from None


def _read_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        # Never echo the file's content: it is a private key.
        reason = type(exc).__name__
        raise CertificateError(f"{path}: not a readable PEM private key ({reason})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{path}: expected an EC private key")
    return key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start (not chmod-ed afterwards), so there is no window in which
    # another user can read the key; written to a temporary name and renamed into place so
    # a crash never leaves half a key behind.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


@contextmanager
def _locked(cert_dir: Path) -> Iterator[None]:
    with open(cert_dir / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
