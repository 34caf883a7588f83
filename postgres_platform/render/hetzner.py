"""What a Hetzner database host runs at first boot (pure): cloud-init mounting the data volume."""

from __future__ import annotations

DATA_MOUNT = "/mnt/pgdata"  # where cloud-init mounts the host's volume; Postgres data lives below it
DATA_DIR = f"{DATA_MOUNT}/data"


def cloud_init(volume_id: int | str) -> str:
    """Mount the data volume (formatted ext4 by Hetzner) before Docker starts any container."""
    device = f"/dev/disk/by-id/scsi-0HC_Volume_{volume_id}"
    return f"""#cloud-config
mounts:
  - ["{device}", "{DATA_MOUNT}", "ext4", "discard,nofail,defaults", "0", "0"]
runcmd:
  - mkdir -p {DATA_MOUNT}
  - mount -a
  - mountpoint -q {DATA_MOUNT}
  - systemctl enable --now docker
"""
