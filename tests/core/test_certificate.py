"""parse_certificate: the facts of a DER certificate, a host name checked, junk never raises."""

from __future__ import annotations

from pathlib import Path

from wac_azure._core.certificate import parse_certificate


def test_parse_certificate_never_raises_on_junk() -> None:
    info = parse_certificate(b"\x30\x03\x02\x01")
    assert info.subject is None
    assert info.self_signed is None


def test_parse_certificate_hostname_mismatch(cert_files: tuple[Path, Path]) -> None:
    import ssl

    der = ssl.PEM_cert_to_DER_cert(cert_files[0].read_text())
    assert parse_certificate(der, host="10.0.0.4").hostname_matches is False
    assert parse_certificate(der, host="WAC-PROBE.test").hostname_matches is True
