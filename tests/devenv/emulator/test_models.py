"""The models' shared base: each model declares its own resource type, and the hooks moto calls are the
base's (a model over one of moto's classes included), so none repeats them."""

from __future__ import annotations

from moto.cloudformation import parsing

from devenv.emulator import moto_patches
from devenv.emulator.models import MODELS
from devenv.emulator.models.base import ModelHooks


def test_every_model_declares_a_type_of_its_own() -> None:
    types = [model.TYPE for model in MODELS]
    assert all(t.startswith("AWS::") for t in types)
    assert len(types) == len(set(types))


def test_moto_calls_the_base_hooks_on_every_model() -> None:
    for model in MODELS:
        assert issubclass(model, ModelHooks)
        for hook in (
            "cloudformation_type",
            "create_from_cloudformation_json",
            "update_from_cloudformation_json",
        ):
            assert getattr(model, hook).__func__ is getattr(ModelHooks, hook).__func__, (model, hook)


def test_moto_finds_each_type_at_the_devenv_model() -> None:
    moto_patches.install()
    known = parsing.get_model_map()
    assert {model.TYPE: known[model.TYPE] for model in MODELS} == {model.TYPE: model for model in MODELS}
    assert {model.TYPE: parsing.get_name_type_map()[model.TYPE] for model in MODELS} == {
        model.TYPE: model.NAME_PROPERTY for model in MODELS
    }
