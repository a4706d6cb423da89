#!/usr/bin/env python3
"""Controller side of the gateway role: a private CA and the gateways' certificates.

Used when the inventory gives no certificate of its own. The CA is made once in
CA_DIR (ca.crt, ca.key; the directory 0700, the key 0600) and kept: every later run
and every gateway reuses it, so clients trust one file, CA_DIR/ca.crt. A gateway's
certificate (CA_DIR/hosts/NAME.crt, NAME.key) is issued again only when it is missing,
names other SANs, was signed by another CA or expires within RENEW_DAYS.

Prints one JSON line: {"changed": bool, "ca": ..., "certificate": ..., "key": ...}.
With --check it only reports whether it would change anything. Exits non-zero with
one message naming the bad value (e.g. an unreadable CA key).
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import os
import sys
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
HOST_DAYS = 397  # the longest validity browsers accept for a server certificate
RENEW_DAYS = 30


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Temp file in the same directory, mode set before any byte is written, then rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san_entries(names: list[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


def _san_set(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in ext.get_values_for_type(x509.IPAddress)} | set(
        ext.get_values_for_type(x509.DNSName)
    )


CaPair = tuple[bool, x509.Certificate | None, ec.EllipticCurvePrivateKey | None]


def ensure_ca(ca_dir: Path, check: bool) -> CaPair:
    """(created, CA certificate, CA key); with check and no CA yet, (True, None, None)."""
    cert_path, key_path = ca_dir / "ca.crt", ca_dir / "ca.key"
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise SystemExit(f"{key_path} is not an EC private key (made by another tool?)")
        return False, x509.load_pem_x509_certificate(cert_path.read_bytes()), key
    if cert_path.exists() or key_path.exists():
        raise SystemExit(
            f"{ca_dir} holds only one of ca.crt and ca.key: restore the other or remove both "
            "(a new CA means every client needs the new ca.crt)"
        )
    if check:
        return True, None, None
    ca_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_dir.chmod(0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "llmbox gateway CA")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_atomic(key_path, _key_pem(key), 0o600)
    _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return True, cert, key


def _host_cert_is_current(
    cert_path: Path, key_path: Path, ca: x509.Certificate, names: list[str]
) -> bool:
    if not (cert_path.exists() and key_path.exists()):
        return False
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    return (
        cert.issuer == ca.subject
        and _san_set(cert) == {str(n) for n in _san_entries_values(names)}
        and cert.not_valid_after_utc - _now() > dt.timedelta(days=RENEW_DAYS)
        and cert.public_key() == key.public_key()
        and _signed_by(cert, ca)
    )


def _san_entries_values(names: list[str]) -> list[str]:
    return [str(e.value) for e in _san_entries(names)]


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def issue(ca_dir: Path, name: str, names: list[str], check: bool) -> dict[str, object]:
    ca_changed, ca, ca_key = ensure_ca(ca_dir, check)
    hosts = ca_dir / "hosts"
    cert_path, key_path = hosts / f"{name}.crt", hosts / f"{name}.key"
    result: dict[str, object] = {
        "ca": str(ca_dir / "ca.crt"), "certificate": str(cert_path), "key": str(key_path),
    }  # fmt: skip
    if ca is not None and _host_cert_is_current(cert_path, key_path, ca, names):
        return {"changed": ca_changed, **result}
    if check or ca is None or ca_key is None:
        return {"changed": True, **result}
    hosts.mkdir(exist_ok=True, mode=0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=HOST_DAYS))
        .add_extension(x509.SubjectAlternativeName(_san_entries(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_atomic(key_path, _key_pem(key), 0o600)
    _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return {"changed": True, **result}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ca_dir", type=Path)
    parser.add_argument("name", help="file name of the gateway's certificate (its inventory name)")
    parser.add_argument("san", nargs="+", help="DNS names and IP addresses; the first is the CN")
    parser.add_argument("--check", action="store_true", help="report, change nothing")
    args = parser.parse_args(argv)
    if "/" in args.name or args.name.startswith("."):
        parser.error(f"name {args.name!r} must be a plain file name")
    print(
        json.dumps(
            issue(args.ca_dir.expanduser(), args.name, list(dict.fromkeys(args.san)), args.check)
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
