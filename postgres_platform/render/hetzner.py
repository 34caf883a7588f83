"""What runs on a Hetzner database host (pure): cloud-init mounting the data volume, growing it."""

from __future__ import annotations

DATA_MOUNT = "/mnt/pgdata"  # where cloud-init mounts the host's volume; Postgres data lives below it
DATA_DIR = f"{DATA_MOUNT}/data"
CONFIG_ROOT = "/etc/postgres-platform"  # config directories of the host's containers (root disk: no data)


def cloud_init(volume_id: int | str) -> str:
    """Mount the data volume (formatted ext4 by Hetzner) before Docker starts any container.

    No `nofail`: a volume that does not mount stops the boot where an operator sees it, and DATA_DIR is
    made only on the mounted volume, so Postgres' bind mount of it fails rather than running on an
    empty directory of the root disk.
    """
    device = f"/dev/disk/by-id/scsi-0HC_Volume_{volume_id}"
    return f"""#cloud-config
mounts:
  - ["{device}", "{DATA_MOUNT}", "ext4", "discard,defaults", "0", "2"]
runcmd:
  - mkdir -p {DATA_MOUNT}
  - mount -a
  - mountpoint -q {DATA_MOUNT} && mkdir -p {DATA_DIR}
  - systemctl enable --now docker
"""


def grow_filesystem_script(volume_gb: int) -> str:
    """Grow the data filesystem to the volume's size (ext4 grows online); nothing to do when it fits."""
    return f"""set -eu
# volume size {volume_gb} GB
device=$(findmnt -n -o SOURCE {DATA_MOUNT})
resize2fs "$device"
"""
