"""Config files on a host, outside any container definition (pure): the script that installs them.

A container whose uploaded files change is replaced (the docker provider forces a new container for
`uploads`). So Postgres' and PgBouncer's files live in a directory on the host, bind-mounted read-only;
a command writes them there and, when one changed, makes the running container reload: an app
change, a password rotation or a renewed certificate restarts nothing.
"""

from __future__ import annotations

import base64
import shlex
from dataclasses import dataclass
from typing import Generic, TypeVar

C = TypeVar(
    "C", covariant=True
)  # the content: a str here and in the tests; a pulumi.Input[str] (maybe secret) in components


@dataclass(frozen=True)
class File(Generic[C]):
    name: str  # in the directory
    mode: str  # octal, e.g. "0600" (on a developer's machine every file is 0644: see install_script)
    content: C


def install_input(files: list[File[str]]) -> str:
    """Standard input for install_script: one `name mode base64` line per file (secrets never in argv)."""
    return "".join(f"{f.name} {f.mode} {base64.b64encode(f.content.encode()).decode()}\n" for f in files)


RELOAD_PENDING = ".reload-pending"  # in a config directory: its last reload failed


def install_script(directory: str, owner: str, reload: str, *, mode_when_not_root: str | None = "0644") -> str:
    """Write each file atomically; if any changed, run `reload`.

    A reload that fails leaves RELOAD_PENDING in the directory, so the next run reloads even though the
    files are already in place (a failed command keeps its old state: the next `pulumi up` runs it again).

    As root (a server) files get their mode and the container user as owner. As a developer (local
    Docker) chown is not possible, so files get `mode_when_not_root` (0644: the container's user reads
    them) inside a 0700 directory of the developer's; None keeps each file's own mode.
    """
    d = shlex.quote(directory)
    other_mode = '"$mode"' if mode_when_not_root is None else mode_when_not_root
    return f"""set -eu
umask 077
mkdir -p {d}
if [ "$(id -u)" != 0 ]; then chmod 0700 "$(dirname {d})"; fi
chmod 0755 {d}
changed=0
if [ -e {d}/{RELOAD_PENDING} ]; then changed=1; fi
while read -r name mode data; do
  tmp={d}/".$name.new"
  printf '%s' "$data" | base64 -d > "$tmp"
  if [ "$(id -u)" = 0 ]; then chown {owner}:{owner} "$tmp"; chmod "$mode" "$tmp"; else chmod {other_mode} "$tmp"; fi
  if cmp -s "$tmp" {d}/"$name"; then rm -f "$tmp"; else mv -f "$tmp" {d}/"$name"; changed=1; fi
done
if [ "$changed" = 1 ]; then
touch {d}/{RELOAD_PENDING}
{reload}
rm -f {d}/{RELOAD_PENDING}
fi
"""


def reload_if_running(container: str, *steps: str) -> str:
    """Shell lines that run `steps` (then SIGHUP: Postgres and PgBouncer reload) if the container runs.

    On the first `pulumi up` the container does not exist yet: it reads the files when it starts.
    """
    c = shlex.quote(container)
    body = "\n".join(f"  {step}" for step in (*steps, f"docker kill --signal=HUP {c} >/dev/null"))
    return f"""if [ "$(docker inspect -f '{{{{.State.Running}}}}' {c} 2>/dev/null)" = true ]; then
{body}
fi"""


def read_install_input(text: str) -> dict[str, File[str]]:
    """install_input's lines back into files by name (for preflight's change impact and the tests)."""
    files = {}
    for line in text.splitlines():
        name, mode, data = line.split(" ")
        files[name] = File(name, mode, base64.b64decode(data).decode())
    return files
