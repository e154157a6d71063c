"""The private CA and per-service certificates."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from services.runtime.tls import CertificateError, ensure_ca, ensure_service_credentials


def sans(cert_pem: bytes) -> tuple[list[str], list[str]]:
    cert = x509.load_pem_x509_certificate(cert_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return names.get_values_for_type(x509.DNSName), [
        str(ip) for ip in names.get_values_for_type(x509.IPAddress)
    ]


def test_ca_is_made_once_and_reused(tmp_path: Path) -> None:
    first = ensure_ca(tmp_path)
    again = ensure_ca(tmp_path)
    assert first.cert_pem == again.cert_pem
    constraints = first.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.value.ca is True


def test_leaf_names_the_identity_and_local_addresses_for_both_ends(tmp_path: Path) -> None:
    creds = ensure_service_credentials(tmp_path, "token-manager")
    dns, ips = sans(creds.cert_pem)
    assert dns[0] == "token-manager"  # first: identity.py takes the first non-local name
    assert "localhost" in dns
    assert ipaddress.ip_address("127.0.0.1") in map(ipaddress.ip_address, ips)
    cert = x509.load_pem_x509_certificate(creds.cert_pem)
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(creds.ca_pem))


def test_private_keys_are_0600_and_never_in_repr(tmp_path: Path) -> None:
    creds = ensure_service_credentials(tmp_path, "api")
    for key in ("ca.key", "api.key"):
        assert stat.S_IMODE((tmp_path / key).stat().st_mode) == 0o600, key
    assert b"PRIVATE KEY" in creds.key_pem
    assert "PRIVATE" not in repr(creds)


def test_leaf_is_reused_and_reissued_when_the_ca_changes(tmp_path: Path) -> None:
    first = ensure_service_credentials(tmp_path, "api")
    assert ensure_service_credentials(tmp_path, "api").cert_pem == first.cert_pem
    for name in ("ca.pem", "ca.key"):
        (tmp_path / name).unlink()
    renewed = ensure_service_credentials(tmp_path, "api")
    assert renewed.ca_pem != first.ca_pem
    assert renewed.cert_pem != first.cert_pem  # the old leaf no longer verifies


def test_provisioned_mode_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="CA certificate not found"):
        ensure_service_credentials(tmp_path, "api", create=False)
    ensure_ca(tmp_path)
    with pytest.raises(CertificateError, match=r"api\.pem"):
        ensure_service_credentials(tmp_path, "api", create=False)
    assert not (tmp_path / "api.pem").exists()


def test_identity_must_be_a_dns_name(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="invalid service identity"):
        ensure_service_credentials(tmp_path, "../etc/passwd")
