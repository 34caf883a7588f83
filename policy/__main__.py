"""The policy pack: `pulumi preview --policy-pack policy`. Building the pack serves it and blocks."""

from pulumi_policy import PolicyPack

from policy.policies import POLICIES

PolicyPack(name="postgres-platform", policies=POLICIES)
