"""Backups: pgBackRest beside Postgres (in the Postgres image): its encrypted repository config, stanza, schedules.

Why systemd timers on the host (not a scheduler container): they outlive container replacements,
log to the journal, catch up a missed run (Persistent=true), and hold no connection between runs.
"""

from __future__ import annotations

import dataclasses
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
    leader_only: bool = False  # hetzner.failover: the units on every database host, run where Postgres leads
    depends_on: Sequence[pulumi.Resource] = ()


class Backups(pulumi.ComponentResource):
    sources: dict[str, MountSource[pulumi.Input[str]]]  # for the Postgres container's backup mounts
    written: pulumi.Resource  # pgbackrest.conf is on the host

    def __init__(self, name: str, args: BackupsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:Backups", name, None, opts)
        self._args, self._name = args, name
        self._members: list[tuple[str, HostShell, str, pulumi.Resource]] = []  # leader_only's other hosts
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
        self._run(self._name, args.shell, "stanza", stanza, after)
        # The first host's units, and with leader_only every other database host's (each runs on the leader).
        hosts = [(self._name, args.shell, args.container, after)] + [
            (name, shell, container, pulumi.ResourceOptions(parent=self, depends_on=[postgres, written]))
            for name, shell, container, written in self._members
        ]
        for name, shell, container, opts in hosts:
            if args.timers:
                units = render.timer_units(container, args.backup, leader_only=args.leader_only)
                self._run(name, shell, "timers", render.timers_script(units), opts)
            if args.verify is not None:
                self._run(name, shell, "verify", self._verify_script(shell, container), opts)

    def _run(self, name: str, shell: HostShell, suffix: str, script: str, opts: pulumi.ResourceOptions) -> None:
        if shell.ssh is None:
            self.ready.append(command.local.Command(f"{name}-{suffix}", create=script, opts=opts))
        else:
            self.ready.append(
                command.remote.Command(f"{name}-{suffix}", connection=shell.ssh, create=script, opts=opts)
            )

    def _verify_script(self, shell: HostShell, container: str) -> str:
        """The verified-restore job written into the stack's config directory; with systemd, its timer on
        backup.verify.schedule (a local stack has none: the job is run by hand, as its docs say)."""
        args = self._args
        assert args.verify is not None
        path = f"{shell.root}/{restore_check.JOB_SCRIPT}"
        condition = render.leads_condition(container) if args.leader_only else ""
        units = restore_check.job_units(path, args.backup.verify.schedule, condition=condition) if args.timers else None
        job = dataclasses.replace(args.verify, server=container)
        return restore_check.install_job_script(path, restore_check.job_script(job), units)

    def on_host(
        self, name: str, shell: HostShell, depends_on: Sequence[pulumi.Resource], container: str | None = None
    ) -> ConfigFiles:
        """The same repository config on another host (a standby restores from the repository and
        fetches WAL with it); with `container` (leader_only: a Patroni member), its units too."""
        files = self._config_files(f"{name}-config", shell, depends_on)
        if container is not None:
            self._members.append((name, shell, container, files.written))
        return files

    def _config_files(self, name: str, shell: HostShell, depends_on: Sequence[pulumi.Resource]) -> ConfigFiles:
        pgbackrest = File("pgbackrest.conf", "0600", self._conf)
        record: File[pulumi.Input[str]] = File(render.RECORD_SCRIPT, "0755", render.record_script())
        scripts = [pgbackrest, record]
        if self._args.leader_only:
            scripts.append(File(render.LEADS_SCRIPT, "0755", render.leads_script()))
        # pgBackRest reads its config per command: nothing to reload.
        return ConfigFiles(
            name,
            ConfigFilesArgs(shell, "pgbackrest", POSTGRES_UID, scripts, reload="true", depends_on=depends_on),
            opts=pulumi.ResourceOptions(parent=self),
        )
