"""Build the images the stacks run, from images/, with this machine's Docker engine.

    python scripts/build_images.py                    # FROM Debian's official image (a registry serves it)
    python scripts/build_images.py --base postgres-platform/debian:trixie-...   # FROM scripts/base_image.sh's

The same build `pulumi up` declares (components/containers.py: legacy builder, host network, the
pinned package versions of model/images.py as build args), so the tests and the end-to-end runs start
exactly the images a stack names. Docker's cache makes a second run take seconds. Prints each
reference it built, one a line (--json: {"base": ..., "images": [...]}); on a terminal, a progress bar
of one step per image on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from postgres_platform.cli.errors import command
from postgres_platform.cli.progress import steps
from postgres_platform.model.images import BUILDS, DEFAULT_BASE, ImageBuild


def build_argv(build: ImageBuild, base: str) -> list[str]:
    args = [arg for name, value in build.args_with_base(base).items() for arg in ("--build-arg", f"{name}={value}")]
    return ["docker", "build", "--quiet", "--network", "host", *args, "--tag", build.reference, str(build.directory)]


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default=DEFAULT_BASE, help=f"the Debian base image (default {DEFAULT_BASE})")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with steps("building images", total=len(BUILDS)) as advance:  # drawn on a terminal's stderr only
        for build in BUILDS.values():
            advance(0, f"building {build.reference}")
            # The legacy builder, as docker.Image is told to use (BuildKit needs a plugin Debian's docker.io lacks).
            done = subprocess.run(
                build_argv(build, args.base),
                capture_output=True,
                text=True,
                env={**os.environ, "DOCKER_BUILDKIT": "0"},
            )
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
                print(f"build_images: {build.reference} failed: {tail[0]}", file=sys.stderr)
                return 1
            if not args.json:
                print(build.reference)
            advance()
    if args.json:
        print(json.dumps({"base": args.base, "images": list(BUILDS)}))
    return 0
