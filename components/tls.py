"""StackCertificates: a CA per stack and server certificates it signs (pulumi-tls, keys in state as secrets)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_tls as tls

CA_VALIDITY_HOURS = 10 * 365 * 24
SERVER_VALIDITY_HOURS = 2 * 365 * 24
RENEW_BEFORE_HOURS = 60 * 24  # `pulumi up` re-issues a server certificate within 60 days of expiry


@dataclass(frozen=True)
class ServerTls:
    """A server's certificate and key, as the stack CA issued them."""

    cert_pem: pulumi.Input[str]
    key_pem: pulumi.Input[str]  # secret


class StackCertificates(pulumi.ComponentResource):
    ca_cert_pem: pulumi.Output[str]  # public: apps verify the servers with it (stack output)

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:StackCertificates", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self._ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        ca = tls.SelfSignedCert(
            f"{name}-ca",
            private_key_pem=self._ca_key.private_key_pem,
            is_ca_certificate=True,
            subject=tls.SelfSignedCertSubjectArgs(common_name=f"postgres-platform {pulumi.get_stack()} CA"),
            validity_period_hours=CA_VALIDITY_HOURS,
            allowed_uses=["cert_signing", "crl_signing"],
            opts=child,
        )
        self.ca_cert_pem = ca.cert_pem
        self.register_outputs({"caCertPem": self.ca_cert_pem})

    def server_certificate(
        self, name: str, *, common_name: str, ip_addresses: list[pulumi.Input[str]]
    ) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """(certificate PEM, secret private key PEM) for a server reached at these addresses."""
        child = pulumi.ResourceOptions(parent=self)
        key = tls.PrivateKey(f"{name}-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        request = tls.CertRequest(
            f"{name}-csr",
            private_key_pem=key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(common_name=common_name),
            ip_addresses=ip_addresses,
            opts=child,
        )
        cert = tls.LocallySignedCert(
            f"{name}-cert",
            cert_request_pem=request.cert_request_pem,
            ca_private_key_pem=self._ca_key.private_key_pem,
            ca_cert_pem=self.ca_cert_pem,
            validity_period_hours=SERVER_VALIDITY_HOURS,
            early_renewal_hours=RENEW_BEFORE_HOURS,
            allowed_uses=["digital_signature", "key_encipherment", "server_auth"],
            opts=child,
        )
        return cert.cert_pem, pulumi.Output.secret(key.private_key_pem)
