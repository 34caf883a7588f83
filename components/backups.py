"""Backups: pgBackRest beside Postgres (in the Postgres image): its encrypted repository config, stanza, schedules.

Why systemd timers on the host (not a scheduler container): they outlive container replacements,
log to the journal, catch up a missed run (Persistent=true), and hold no connection between runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.config_files import ConfigFiles, ConfigFilesArgs, HostShell
from components.resources.containers import Placement
from components.resources.passwords import generated_password
from postgres_platform.model.config import BackupConfig
from postgres_platform.model.names import COMPONENT_LABEL, PGDATA, POSTGRES_UID
from postgres_platform.render import backup as render
from postgres_platform.render import restore_check
from postgres_platform.render.containers import BACKUP_CONFIG, BACKUP_REPO, MountSource
from postgres_platform.render.files import File


@dataclass(frozen=True)
class BackupsArgs:
    backup: BackupConfig
    placement: Placement  # where the repository volume lives
    shell: HostShell  # where pgbackrest.conf is written and the commands run
    container: str  # the Postgres container's name (pgBackRest runs inside it)
    s3_key: pulumi.Output[str] | None = None  # secret config
    s3_key_secret: pulumi.Output[str] | None = None
    timers: bool = False  # a host with systemd (Hetzner); a developer's Docker has none
    verify: restore_check.VerifyJob | None = None  # the scheduled verified restore (restore_check.job_of)
    depends_on: Sequence[pulumi.Resource] = ()


class Backups(pulumi.ComponentResource):
    sources: dict[str, MountSource[pulumi.Input[str]]]  # for the Postgres container's backup mounts
    written: pulumi.Resource  # pgbackrest.conf is on the host

    def __init__(self, name: str, args: BackupsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:Backups", name, None, opts)
        self._args, self._name = args, name
        # Never regenerated: every backup and archived WAL segment is encrypted with it.
        passphrase = generated_password(f"{name}-passphrase", self, length=64, protect=True)
        conf = pulumi.Output.all(passphrase, args.s3_key or "", args.s3_key_secret or "").apply(
            lambda v: render.render_conf(args.backup, PGDATA, render.RepoSecrets(v[0], v[1] or None, v[2] or None))
        )
        self._conf = conf
        files = self._config_files(f"{name}-config", args.shell, args.depends_on)
        self.written = files.written
        self.sources = {BACKUP_CONFIG: MountSource(files.path)}
        if args.backup.repo == "posix":
            repo = docker.Volume(
                f"{name}-repo",
                name=f"postgres-platform-{pulumi.get_stack()}-pgbackrest",
                labels=[docker.VolumeLabelArgs(label=COMPONENT_LABEL, value="backup-repo")],
                opts=args.placement.options(self, []).merge(pulumi.ResourceOptions(protect=True)),
            )
            self.sources[BACKUP_REPO] = MountSource(repo.name, "volume")
        self.register_outputs({})

    def activate(self, postgres: pulumi.Resource) -> None:
        """Once Postgres runs: the stanza (idempotent) and a check; on a host with systemd, the timers."""
        args = self._args
        after = pulumi.ResourceOptions(parent=self, depends_on=[postgres, self.written])
        self.ready: list[pulumi.Resource] = []
        stanza = render.stanza_script(args.container, args.backup)
        timers = render.timers_script(render.timer_units(args.container, args.backup)) if args.timers else None
        for suffix, script in (("stanza", stanza), ("timers", timers), ("verify", self._verify_script())):
            if script is None:
                continue
            if args.shell.ssh is None:
                self.ready.append(command.local.Command(f"{self._name}-{suffix}", create=script, opts=after))
            else:
                self.ready.append(
                    command.remote.Command(
                        f"{self._name}-{suffix}", connection=args.shell.ssh, create=script, opts=after
                    )
                )

    def _verify_script(self) -> str | None:
        """The verified-restore job written into the stack's config directory; with systemd, its timer on
        backup.verify.schedule (a local stack has none: the job is run by hand, as its docs say)."""
        args = self._args
        if args.verify is None:
            return None
        path = f"{args.shell.root}/{restore_check.JOB_SCRIPT}"
        units = restore_check.job_units(path, args.backup.verify.schedule) if args.timers else None
        return restore_check.install_job_script(path, restore_check.job_script(args.verify), units)

    def on_host(self, name: str, shell: HostShell, depends_on: Sequence[pulumi.Resource]) -> ConfigFiles:
        """The same repository config on another host (a standby restores from the repository and
        fetches WAL with it)."""
        return self._config_files(f"{name}-config", shell, depends_on)

    def _config_files(self, name: str, shell: HostShell, depends_on: Sequence[pulumi.Resource]) -> ConfigFiles:
        pgbackrest = File("pgbackrest.conf", "0600", self._conf)
        record: File[pulumi.Input[str]] = File(render.RECORD_SCRIPT, "0755", render.record_script())
        # pgBackRest reads its config per command: nothing to reload.
        return ConfigFiles(
            name,
            ConfigFilesArgs(
                shell, "pgbackrest", POSTGRES_UID, [pgbackrest, record], reload="true", depends_on=depends_on
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
