"""TrainConfig is the one description of every setting: validation and the CLI flags follow its metadata."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from catdog_gui.core import config as C
from catdog_gui.core.config import TrainConfig, add_cli_arguments, default_model, overrides_from_cli
from catdog_gui.core.errors import CatdogError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_cli_arguments(p)
    return p


def test_every_field_but_augment_is_declared_with_a_label_and_help():
    names = [s.name for s in TrainConfig.settings()]
    assert names == [f.name for f in dataclasses.fields(TrainConfig) if f.name != "augment"]
    for s in TrainConfig.settings():
        assert s.label and s.help, s.name
        assert s.check(s.default) is None, (s.name, s.default)  # every default is allowed
        if s.kind in (int, float) and s.min is not None:
            assert s.min <= s.max


@pytest.mark.parametrize("setting", [s for s in TrainConfig.settings() if s.kind in (int, float) and s.min is not None],
                         ids=lambda s: s.name)
def test_range_is_enforced_by_validate_and_by_the_cli_alike(setting):
    below = setting.min - (1 if setting.kind is int else setting.min / 2 or 0.5)
    above = setting.max + 1
    for bad in (below, above):
        with pytest.raises(CatdogError, match=setting.label.lower()):
            dataclasses.replace(TrainConfig(), **{setting.name: setting.kind(bad)}).validate()
        with pytest.raises(SystemExit):
            _parser().parse_args([setting.cli, str(setting.kind(bad))])
    for good in (setting.min, setting.max):
        dataclasses.replace(TrainConfig(), **{setting.name: setting.kind(good)}).validate()
        args = _parser().parse_args([setting.cli, str(setting.kind(good))])
        assert overrides_from_cli(args) == {setting.name: setting.kind(good)}


def test_a_changed_declaration_changes_validation_and_flags(monkeypatch):
    """Nothing else holds a copy of the range: change the declaration and both follow."""
    original = TrainConfig.settings
    patched = tuple(dataclasses.replace(s, max=50) if s.name == "epochs" else s for s in original())
    monkeypatch.setattr(TrainConfig, "settings", classmethod(lambda cls: patched))
    with pytest.raises(CatdogError, match="between 1 and 50"):
        TrainConfig(epochs=60).validate()
    with pytest.raises(SystemExit):
        _parser().parse_args(["--epochs", "60"])


def test_choices_and_switches():
    p = _parser()
    with pytest.raises(SystemExit):
        p.parse_args(["--optimizer", "rmsprop"])
    assert overrides_from_cli(p.parse_args([])) == {}  # flags not given are not settings
    got = overrides_from_cli(p.parse_args(["--pretrained", "--finetune", "--no-disk-cache", "--weights", "w.pth"]))
    assert got == {"pretrained": True, "transfer_mode": "finetune", "disk_cache": False, "weights_path": "w.pth"}
    with pytest.raises(CatdogError, match="transfer mode must be one of frozen, finetune"):
        TrainConfig(transfer_mode="thaw").validate()


def test_coerce_reads_settings_file_text():
    s = TrainConfig.setting("lr")
    assert s.coerce("0.01") == 0.01
    assert TrainConfig.setting("epochs").coerce("12") == 12
    with pytest.raises(ValueError):
        TrainConfig.setting("epochs").coerce("1.5")
    assert TrainConfig.setting("pretrained").coerce("true") is True
    assert TrainConfig.setting("image_size").coerce(None) is None


def test_default_model_rule_is_in_one_place():
    assert default_model(False) == "lenet5" and default_model(True) == C.DEFAULT_PRETRAINED_MODEL
    from catdog_gui.core.config import make_config

    assert make_config(pretrained=True).model == C.DEFAULT_PRETRAINED_MODEL
    assert make_config().model == "lenet5"
    with pytest.raises(CatdogError, match="unknown setting learning_rate"):
        make_config(learning_rate=0.1)


def test_config_round_trips_through_a_dict():
    cfg = TrainConfig(epochs=7, lr=0.01, val_fraction=0.3, seed=4, weights_path="/x.pth")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
