"""What runs on a Hetzner host (pure): cloud-init mounting a database host's data volume, growing it; a
witness's cloud-init and the load balancer's health checks where failover is on."""

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


# --- failover (hetzner.failover) ------------------------------------------------------------------

ETCD_DATA_DIR = "/var/lib/postgres-platform/etcd"  # an etcd member's data, on the root disk (not PGDATA's volume)
# The load balancer's health checks ask Patroni's REST API: 200 where it names this host's role, 503 elsewhere.
PRIMARY_CHECK = "/primary"
REPLICA_CHECK = "/replica"
REST_API_TLS = True  # the REST API speaks TLS (its certificate: the host's, from the stack CA)
# A check every 3 s, 2 s to answer, unhealthy after 2 misses: the load balancer follows Patroni's
# promotion within about 6 s (Hetzner's minimum interval is 3 s).
HEALTH_INTERVAL = 3
HEALTH_TIMEOUT = 2
HEALTH_RETRIES = 2
READ_PORT = 5433  # the load balancer's port for the replica (read DSNs), forwarded to 5432 on it


def witness_cloud_init() -> str:
    """A witness has no data volume: only etcd's directory and Docker, which runs its etcd container."""
    return f"""#cloud-config
runcmd:
  - mkdir -p {ETCD_DATA_DIR}
  - systemctl enable --now docker
"""
