"""The chart's generated webhook certificate (no cert-manager) on a real API server across upgrades:
kept while it is valid, renewed by the first `helm upgrade` in the last third of its validity or after
it expired. Helm has no clock of its own between upgrades, so the passing of time is played by
writing into the Secret what the chart wrote years earlier: a certificate that has expired (or is
about to), with the not-after time the chart recorded beside it."""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.k8s.cluster import Cluster, start_cluster
from tests.k8s.tools import CHART, helm

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

NAMESPACE = "certs"
SECRET = f"/api/v1/namespaces/{NAMESPACE}/secrets/certs-orchestrator-sidecar-injector-tls"
WEBHOOK = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/certs-orchestrator-sidecar"
NOT_AFTER = "orchestrator.sidecar/certificate-not-after"
NEVER = ("--set", "webhook.namespaceSelector.matchLabels.never=match")  # catches no pod of other tests
DAY = datetime.timedelta(days=1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with start_cluster(tmp_path_factory.mktemp("cluster")) as running:
        running.create("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
        yield running


def kube(cluster: Cluster) -> tuple[str, ...]:
    return ("--kubeconfig", str(cluster.kubeconfig), "--namespace", NAMESPACE)


def certificates(pem_b64: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(base64.b64decode(pem_b64))


def issued_pair(not_after: datetime.datetime) -> dict[str, str]:
    """A CA and a serving certificate valid until `not_after`, as the Secret's base64 data."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "older CA")])
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    start = not_after - 3650 * DAY

    def build(subject: x509.Name, public: ec.EllipticCurvePublicKey, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        return builder.sign(ca_key, hashes.SHA256())

    ca = build(name, ca_key.public_key(), True)
    cert = build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "injector")]), key.public_key(), False)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pem = (
        cert.public_bytes(serialization.Encoding.PEM),
        key_pem,
        ca.public_bytes(serialization.Encoding.PEM),
    )
    return dict(
        zip(("tls.crt", "tls.key", "ca.crt"), (base64.b64encode(p).decode() for p in pem), strict=True)
    )


def age_the_secret(cluster: Cluster, not_after: datetime.datetime) -> dict[str, str]:
    """The Secret as the chart left it long ago: a pair valid until `not_after`, recorded beside it."""
    data = issued_pair(not_after)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {
            "name": SECRET.rsplit("/", 1)[1],
            "namespace": NAMESPACE,
            "annotations": {NOT_AFTER: str(int(not_after.timestamp()))},
        },
        "data": data,
    }
    # applied as Helm applies (its field manager), as the release's own earlier revision would have
    status, answer = cluster.request(
        "PATCH", SECRET + "?fieldManager=helm&force=true", secret, content_type="application/apply-patch+yaml"
    )
    assert status == 200, answer.get("message")
    return data


def test_an_expired_certificate_is_replaced_by_the_next_upgrade(cluster: Cluster) -> None:
    """The expired pair was looked up and kept by every upgrade: every review failed its TLS
    handshake (pods admitted without the sidecar, or refused under Fail) and `helm upgrade` could
    not mend it."""
    helm("install", "certs", str(CHART), *kube(cluster), *NEVER)
    try:
        expired = age_the_secret(cluster, datetime.datetime.now(datetime.UTC) - DAY)
        helm("upgrade", "certs", str(CHART), *kube(cluster), *NEVER)
        data = cluster.get(SECRET)["data"]
        assert data["ca.crt"] != expired["ca.crt"]
        [served] = certificates(data["tls.crt"])
        assert served.not_valid_after_utc > datetime.datetime.now(datetime.UTC) + 3000 * DAY
        [ca, *_] = certificates(cluster.get(WEBHOOK)["webhooks"][0]["clientConfig"]["caBundle"])
        served.verify_directly_issued_by(ca)
        recorded = int(cluster.get(SECRET)["metadata"]["annotations"][NOT_AFTER])
        assert abs(recorded - served.not_valid_after_utc.timestamp()) < 120
        helm("upgrade", "certs", str(CHART), *kube(cluster), *NEVER)  # valid now: kept
        assert cluster.get(SECRET)["data"] == data
    finally:
        helm("uninstall", "certs", *kube(cluster))


def test_a_certificate_near_its_end_is_renewed_with_both_cas_trusted_meanwhile(cluster: Cluster) -> None:
    """In its last third the pair is renewed; the webhook trusts the old CA too, since the injector
    pods serve the old certificate until the kubelet refreshes their Secret volume."""
    helm("install", "certs", str(CHART), *kube(cluster), *NEVER)
    try:
        old = age_the_secret(cluster, datetime.datetime.now(datetime.UTC) + 30 * DAY)
        helm("upgrade", "certs", str(CHART), *kube(cluster), *NEVER)
        data = cluster.get(SECRET)["data"]
        assert data["tls.crt"] != old["tls.crt"]
        trusted = certificates(cluster.get(WEBHOOK)["webhooks"][0]["clientConfig"]["caBundle"])
        [new_ca], [old_ca] = certificates(data["ca.crt"]), certificates(old["ca.crt"])
        assert trusted == [new_ca, old_ca]
        for served, ca in ((data, new_ca), (old, old_ca)):
            certificates(served["tls.crt"])[0].verify_directly_issued_by(ca)
    finally:
        helm("uninstall", "certs", *kube(cluster))
