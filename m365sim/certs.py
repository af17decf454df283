"""The simulator's CA, its TLS server certificate, app certificates (PFX) and the token
signing key. All live in the state directory and are reused when present, so the CA that
Kodo was told to trust stays valid across restarts."""

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _now():
    return datetime.datetime.now(datetime.UTC)


def _new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_private(path, data):
    tmp = Path(str(path) + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _write_public(path, data):
    tmp = Path(str(path) + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_pair(cert_path, key_path):
    try:
        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), None)
    except (OSError, ValueError):
        return None, None
    if cert.not_valid_after_utc < _now() + datetime.timedelta(days=7):
        return None, None
    return cert, key


def ensure_ca(state_dir):
    """(ca_cert, ca_key, ca_pem_path): loaded from state_dir or created there."""
    cert_path, key_path = state_dir / "ca.pem", state_dir / "ca-key.pem"
    cert, key = _load_pair(cert_path, key_path)
    if cert is None:
        key = _new_key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "m365sim local CA")])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        _write_private(key_path, _key_pem(key))
        _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key, cert_path.resolve()


def _san_for(host):
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    try:
        ip = ipaddress.ip_address(host)
        if ip != ipaddress.ip_address("127.0.0.1"):
            names.append(x509.IPAddress(ip))
    except ValueError:
        if host != "localhost":
            names.append(x509.DNSName(host))
    return names


def ensure_server_cert(state_dir, host, ca_cert, ca_key):
    """(cert_path, key_path) of a TLS server certificate for host, signed by the CA."""
    cert_path, key_path = state_dir / "server.pem", state_dir / "server-key.pem"
    cert, key = _load_pair(cert_path, key_path)
    wanted = _san_for(host)
    if cert is not None:
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            ok = all(n in san for n in wanted) and cert.issuer == ca_cert.subject
            ca_cert.public_key().verify(
                cert.signature,
                cert.tbs_certificate_bytes,
                padding.PKCS1v15(),
                cert.signature_hash_algorithm,
            )
        except Exception:
            ok = False
        if ok:
            return cert_path.resolve(), key_path.resolve()
    key = _new_key()
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=730))
        .add_extension(x509.SubjectAlternativeName(wanted), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert_path.resolve(), key_path.resolve()


def make_app_certificate(name):
    """A self-signed RSA 2048 certificate valid for 2 years, as Register-KodoApp.ps1 makes."""
    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now().replace(microsecond=0)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=730))
        .sign(key, hashes.SHA256())
    )
    return cert, key


def ensure_app_pfx(path, name, password):
    """(cert, key) stored in a password-protected PFX at path; created when missing or
    when the password does not open it."""
    path = Path(path)
    if path.exists():
        try:
            key, cert, _ = pkcs12.load_key_and_certificates(path.read_bytes(), password.encode())
            if cert is not None and key is not None and cert.not_valid_after_utc > _now():
                return cert, key
        except ValueError:
            pass
    cert, key = make_app_certificate(name)
    pfx = pkcs12.serialize_key_and_certificates(
        name.encode(), key, cert, None, serialization.BestAvailableEncryption(password.encode())
    )
    _write_private(path, pfx)
    return cert, key


def ensure_signing_key(state_dir):
    path = state_dir / "token-signing-key.pem"
    try:
        return serialization.load_pem_private_key(path.read_bytes(), None)
    except (OSError, ValueError):
        key = _new_key()
        _write_private(path, _key_pem(key))
        return key
