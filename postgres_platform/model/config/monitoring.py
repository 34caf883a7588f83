"""The `monitoring` section: the exporters beside the server, and an optional Prometheus and Alertmanager.

Secrets (the webhook URL, the SMTP password) are never fields here: they are stack secrets
(`pulumi config set --secret`, model.load's SECRET_KEYS), written to files the containers read.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from postgres_platform.model.config.types import ConfigModel, Port, Text

# Set with `pulumi config set --secret` (model.load refuses them as plain values).
WEBHOOK_URL_KEY = "alertWebhookUrl"  # the webhook receiver's URL (it often carries a token)
SMTP_PASSWORD_KEY = "alertSmtpPassword"  # the email receiver's SMTP password
SECRET_KEYS = (WEBHOOK_URL_KEY, SMTP_PASSWORD_KEY)


def _duration(value: str) -> str:
    """Prometheus' retention: a number and one unit (d, w, y, h), e.g. 15d."""
    if not (len(value) > 1 and value[:-1].isdigit() and value[-1] in "hdwy" and int(value[:-1]) > 0):
        raise PydanticCustomError("duration", "must be a positive number and one unit of h, d, w, y (e.g. 15d)")
    return value


Duration = Annotated[str, AfterValidator(_duration)]


class EmailReceiverConfig(ConfigModel):
    """`monitoring.alertmanager.email`: where Alertmanager mails alerts (receiver email); the SMTP password,
    where the server needs one, is the stack secret alertSmtpPassword."""

    smarthost: Text
    """The SMTP server as host:port, e.g. smtp.example.org:587."""
    from_: Text = Field(alias="from")
    """The sender address, e.g. alerts@example.org."""
    to: Text
    """Where alerts go, one address or a comma-separated list."""
    username: Text | None = None
    """The SMTP login (with the password in alertSmtpPassword); absent: no SMTP authentication."""
    require_tls: bool = Field(True, alias="requireTls")
    """Whether the SMTP session must be upgraded with STARTTLS (default true)."""


class AlertmanagerConfig(ConfigModel):
    """`monitoring.alertmanager`: the bundled Alertmanager (needs monitoring.prometheus true) and its one
    receiver: a webhook (its URL the stack secret alertWebhookUrl) or email."""

    receiver: Literal["webhook", "email"]
    """Where alerts go: webhook (a POST of Alertmanager's JSON to the URL in the stack secret
    alertWebhookUrl; e.g. a dead man's switch service that expects the Watchdog) or email
    (monitoring.alertmanager.email)."""
    email: EmailReceiverConfig | None = None
    """The email receiver's settings; required with receiver email, only there."""
    send_resolved: bool = Field(True, alias="sendResolved")
    """Whether a resolved alert is sent too (default true)."""
    port: Port = 9093
    """Alertmanager's port (default 9093): on 127.0.0.1 locally, on the host's private IP on Hetzner."""


class MonitoringConfig(ConfigModel):
    """`monitoring`: postgres_exporter and pgbouncer_exporter beside the server (logged in as the monitoring
    role), and optionally Prometheus (the stack's alert rules) and Alertmanager. Without a Prometheus of
    the stack's own, an existing one scrapes the exporters with the stack outputs scrapeConfig and
    alertRules (docs/operations/monitoring.md). Every port listens on 127.0.0.1 locally and on the host's
    private IP on Hetzner, never on a public interface."""

    exporters: bool | None = None
    """Whether the exporters run; absent: true wherever the program runs Postgres (targets local and
    hetzner), false for target existing, where it may not be true (the server is not ours to run beside)."""
    postgres_exporter_port: Port = Field(9187, alias="postgresExporterPort")
    """postgres_exporter's port (default 9187, its own)."""
    pgbouncer_exporter_port: Port = Field(9127, alias="pgbouncerExporterPort")
    """pgbouncer_exporter's port (default 9127, its own)."""
    prometheus: bool = False
    """Whether the stack runs a Prometheus of its own beside the server, scraping the exporters and
    evaluating the stack's alert rules (default false: an existing Prometheus uses the outputs)."""
    prometheus_port: Port = Field(9090, alias="prometheusPort")
    """Prometheus' port (default 9090)."""
    retention: Duration = "15d"
    """How long Prometheus keeps samples (default 15d), a number and a unit of h, d, w or y."""
    alertmanager: AlertmanagerConfig | None = None
    """The bundled Alertmanager and its receiver (needs prometheus true); absent: none, Prometheus
    evaluates the rules and sends their alerts nowhere."""

    def ports(self) -> dict[str, int]:
        """Every port the section opens, by its key."""
        ports = {
            "monitoring.postgresExporterPort": self.postgres_exporter_port,
            "monitoring.pgbouncerExporterPort": self.pgbouncer_exporter_port,
        }
        if self.prometheus:
            ports["monitoring.prometheusPort"] = self.prometheus_port
        if self.alertmanager is not None:
            ports["monitoring.alertmanager.port"] = self.alertmanager.port
        return ports
