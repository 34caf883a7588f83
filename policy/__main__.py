"""The policy pack: `pulumi preview --policy-pack policy`. Building the pack serves it and blocks."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the pack runs from policy/

from pulumi_policy import PolicyPack

from policy.policies import POLICIES

PolicyPack(name="postgres-platform", policies=POLICIES)
