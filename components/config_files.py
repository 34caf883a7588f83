"""ConfigFiles: a directory of config files on a host, written by a command, reloaded on change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command

from postgres_platform.render.files import File, install_input, install_script


@dataclass(frozen=True)
class HostShell:
    """Where commands run: the machine running Pulumi (local Docker) or a server over SSH."""

    root: str  # the directory holding every container's config directory
    ssh: command.remote.ConnectionArgs | None = None  # None: this machine


@dataclass(frozen=True)
class ConfigFilesArgs:
    shell: HostShell
    directory: str  # under shell.root; bind-mounted read-only into the container
    owner: str  # numeric uid of the container's user
    files: Sequence[File[pulumi.Input[str]]]  # contents may be secret: they reach the host on stdin only
    reload: str  # shell run when a file changed (render.files.reload_if_running)
    depends_on: Sequence[pulumi.Resource] = ()


class ConfigFiles(pulumi.ComponentResource):
    path: str  # on the host
    written: pulumi.Resource  # what a container depends on: its files exist before it starts

    def __init__(self, name: str, args: ConfigFilesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:ConfigFiles", name, None, opts)
        self.path = f"{args.shell.root}/{args.directory}"
        names = [(f.name, f.mode) for f in args.files]
        stdin: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(*[f.content for f in args.files]).apply(
                lambda contents: install_input([File(n, m, c) for (n, m), c in zip(names, contents, strict=True)])
            )
        )
        script = install_script(self.path, args.owner, args.reload)
        # A change of stdin or script is an update: the command runs again (pulumi-command's Update).
        options = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        if args.shell.ssh is None:
            self.written = command.local.Command(f"{name}-write", create=script, stdin=stdin, opts=options)
        else:
            self.written = command.remote.Command(
                f"{name}-write", connection=args.shell.ssh, create=script, stdin=stdin, opts=options
            )
        self.register_outputs({"path": self.path})
