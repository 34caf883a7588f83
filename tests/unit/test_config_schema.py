"""The stack config's schema documents itself: the configuration reference is generated from it."""

from __future__ import annotations

import importlib
import json
import pkgutil
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from postgres_platform.model import config
from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.config.types import ConfigModel


def models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models a field's type holds: itself, or inside lists, dicts, unions and Annotated."""
    if get_origin(annotation) is None and isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in models_in(arg)]


def reachable_models(root: type[BaseModel]) -> list[type[BaseModel]]:
    """Every model reachable from `root` through its fields, `root` first."""
    found: list[type[BaseModel]] = []
    todo = [root]
    while todo:
        model = todo.pop(0)
        if model not in found:
            found.append(model)
            todo += [m for field in model.model_fields.values() for m in models_in(field.annotation)]
    return found


def undescribed_fields(root: type[BaseModel]) -> list[str]:
    return [
        f"{model.__name__}.{name}"
        for model in reachable_models(root)
        for name, field in model.model_fields.items()
        if not (field.description or "").strip()
    ]


def test_every_config_key_has_a_description() -> None:
    assert undescribed_fields(PlatformConfig) == []


def test_every_section_has_a_description() -> None:
    assert [model.__name__ for model in reachable_models(PlatformConfig) if not (model.__doc__ or "").strip()] == []


def test_the_walk_reaches_every_model_of_the_config() -> None:
    modules = [importlib.import_module(f"{config.__name__}.{m.name}") for m in pkgutil.iter_modules(config.__path__)]
    defined = {
        value
        for module in modules
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, ConfigModel) and value.__module__ == module.__name__
    }
    defined.discard(ConfigModel)
    assert set(reachable_models(PlatformConfig)) == defined


def test_a_stated_default_is_the_real_one() -> None:
    """A description that names a number or a yes/no default names the one the model applies."""
    wrong = [
        f"{model.__name__}.{name}: default {json.dumps(field.default)}"
        for model in reachable_models(PlatformConfig)
        for name, field in model.model_fields.items()
        if isinstance(field.default, bool | int)
        and f"default {json.dumps(field.default)}" not in str(field.description)
    ]
    assert wrong == []


class Leaf(ConfigModel):
    """A model nested deep in another."""

    described: int = 0
    """Has a description."""
    bare: int = 0


class Branch(ConfigModel):
    """A model holding another in a union of a dict of lists."""

    leaves: dict[str, list[Leaf]] | None = None
    """Leaves by name."""


def test_the_walk_finds_a_field_without_a_description_however_deep() -> None:
    assert reachable_models(Branch) == [Branch, Leaf]
    assert undescribed_fields(Branch) == ["Leaf.bare"]
    assert Leaf.model_fields["described"].description == "Has a description."
