"""Unit tier: the pure core (model, render, the tools' pure parts), no Pulumi mocks, no servers."""

from tests.helpers import tier

pytest_collection_modifyitems = tier(__file__, "unit")
