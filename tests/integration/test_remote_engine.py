"""A remote Docker engine over TLS: DOCKER_HOST=tcp://…, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH.

The test makes a certificate authority, a server certificate for 127.0.0.1
and a client certificate (with `cryptography`), and starts a private dockerd
that listens only on 127.0.0.1 with `--tlsverify` (its own data, exec roots
and socket, `--iptables=false`, and a bridge of its own: the machine's
engine and its docker0 are never touched). The bot reaches it as the Docker
CLI would, from the settings alone — and is refused without the client
certificate, or when the engine's certificate is not the one the CA signed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bot.config import Settings
from bot.errors import DockerUnavailable
from bot.ops.doctor.engine import check_docker
from bot.runner.docker import DockerRunner, container_user
from bot.runner.spec import ContainerSpec
from tests import engines

IMAGE = "debian:bookworm-slim"  # the locally made base image (.ci/run), copied in

pytestmark = pytest.mark.docker


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _cert(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    usage: x509.ObjectIdentifier | None = None,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, signer = issuer if issuer else (subject, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if usage == ExtendedKeyUsageOID.SERVER_AUTH:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(signer, hashes.SHA256())


def make_certificates(folder: Path, prefix: str = "") -> None:
    """ca.pem, server-cert.pem/server-key.pem and the client's cert.pem/key.pem in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca = _cert(f"{prefix}test CA", ca_key, None, ca=True)
    server_key, client_key = _key(), _key()
    server = _cert("127.0.0.1", server_key, (ca.subject, ca_key),
                   usage=ExtendedKeyUsageOID.SERVER_AUTH)  # fmt: skip
    client = _cert("bot", client_key, (ca.subject, ca_key), usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "server-cert.pem").write_bytes(server.public_bytes(pem))
    (folder / "server-key.pem").write_bytes(_pem(server_key))
    (folder / "cert.pem").write_bytes(client.public_bytes(pem))
    (folder / "key.pem").write_bytes(_pem(client_key))


@dataclass
class Engine:
    host: str  # tcp://127.0.0.1:PORT
    certs: Path  # what DOCKER_CERT_PATH names: ca.pem, cert.pem, key.pem
    root: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    certs = Path(tempfile.mkdtemp(prefix="actls-certs-", dir="/tmp"))
    make_certificates(certs)
    host = f"tcp://127.0.0.1:{_free_port()}"
    tls = (f"--host={host}", "--tlsverify", f"--tlscacert={certs}/ca.pem",
           f"--tlscert={certs}/server-cert.pem", f"--tlskey={certs}/server-key.pem")  # fmt: skip
    try:
        with engines.private_engine("actls-", 213, images=(IMAGE,), args=tls) as made:
            yield Engine(host, certs, made.root)
    finally:
        shutil.rmtree(certs, ignore_errors=True)


def settings_for(engine: Engine, **environ: str) -> Settings:
    return Settings.from_environ(
        {"DOCKER_HOST": engine.host, "DOCKER_TLS_VERIFY": "1",
         "DOCKER_CERT_PATH": str(engine.certs), **environ}
    )  # fmt: skip


def test_the_engine_is_reached_as_the_docker_cli_reaches_it(engine: Engine) -> None:
    settings = settings_for(engine)
    assert (settings.docker_tls_verify, settings.docker_cert_path) == (True, str(engine.certs))
    runner = DockerRunner.of(settings)
    runner.ping()
    assert runner.client.version()["ApiVersion"]
    check, _ = check_docker(settings)
    assert check.ok and "over TLS" in check.detail, check


def test_a_container_runs_there_with_the_agents_hardening(engine: Engine, tmp_path: Path) -> None:
    runner = DockerRunner.of(settings_for(engine))
    spec = ContainerSpec(
        image=IMAGE,
        command=["sh", "-c", "id -u; cat /proc/self/status | grep CapEff"],
        workspace=tmp_path,
        ticket_id=990301,
        network="none",
        user=container_user(),
        timeout=60,
        idle_timeout=60,
        role="test",
    )
    lines: list[str] = []
    exit_ = asyncio.run(runner.run(spec, lines.append, asyncio.Event()))
    assert exit_.exit_code == 0, (exit_, lines)
    assert lines[0] == container_user().partition(":")[0]
    assert lines[1].split() == ["CapEff:", "0000000000000000"]
    assert runner.running_for(990301) == []  # removed afterwards


def test_without_the_client_certificate_the_engine_refuses(engine: Engine) -> None:
    plain = DockerRunner(engine.host)  # no TLS settings: the engine hangs up
    with pytest.raises(DockerUnavailable):
        plain.ping()
    elsewhere = engine.root / "no-client-cert"
    elsewhere.mkdir(exist_ok=True)
    shutil.copy(engine.certs / "ca.pem", elsewhere / "ca.pem")
    with pytest.raises(DockerUnavailable):  # cert.pem and key.pem missing
        DockerRunner(engine.host, tls_verify=True, cert_path=str(elsewhere)).ping()


def test_an_engine_certificate_from_another_authority_is_refused(
    engine: Engine, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    make_certificates(other, prefix="another ")
    runner = DockerRunner(engine.host, tls_verify=True, cert_path=str(other))
    with pytest.raises(DockerUnavailable):
        runner.ping()
    check, _ = check_docker(settings_for(engine, DOCKER_CERT_PATH=str(other)))
    assert not check.ok and engine.host in check.detail and check.fix
    assert "ca.pem" in check.fix
