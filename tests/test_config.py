"""Configuration: presets, validation messages, and the config command."""

from __future__ import annotations

import tomllib

import pytest
from click.testing import CliRunner

from ingest.config import PRESETS, load_config, preset, to_toml
from ingest.errors import ConfigInvalid


@pytest.mark.parametrize("name,expected", [
    ("light", (20, 100, 5, 3.0, 1.5, 60, 50)),
    ("standard", (50, 200, 10, 2.0, 1.0, 30, 100)),
    ("heavy", (200, 1000, 20, 1.0, 0.5, 15, 500)),
    ("enterprise", (500, 2000, 25, 0.5, 0.2, 10, 2048)),
])
def test_presets_match_the_published_table(name, expected):
    c = preset(name)
    got = (c.extraction.max_chats, c.extraction.max_messages_per_chat,
           c.extraction.batch_size, c.extraction.chat_delay_seconds,
           c.extraction.message_delay_seconds, c.monitoring.check_interval_seconds,
           c.performance.memory_limit_mb)
    assert got == expected


def test_a_bad_value_names_the_key_the_value_and_what_is_allowed(tmp_path):
    path = tmp_path / "walake.toml"
    path.write_text('[extraction]\nmax_chats = -3\nbatch_sise = 4\n'
                    '[performance]\nmax_concurrent_requests = "two"\n')
    with pytest.raises(ConfigInvalid) as caught:
        load_config(path)
    message = str(caught.value)
    assert f"Invalid configuration in {path}:" in message
    assert "extraction.max_chats = -3: Input should be greater than or equal to 1" in message
    assert "extraction.batch_sise = 4: unknown key; remove it or check its spelling" in (
        message)
    assert "performance.max_concurrent_requests = 'two': Input should be a valid integer" in (
        message)


def test_broken_toml_is_reported_with_the_file(tmp_path):
    path = tmp_path / "walake.toml"
    path.write_text("[extraction\n")
    with pytest.raises(ConfigInvalid, match="not valid TOML"):
        load_config(path)


def test_preset_command_writes_a_file_that_validates_and_keeps_source(tmp_path,
                                                                      walake_cli):
    path = tmp_path / "walake.toml"
    path.write_text('[source]\ncommand = "uv"\nargs = ["run", "main.py"]\n')
    runner = CliRunner()
    done = runner.invoke(walake_cli, ["config", "--config", str(path), "--preset", "heavy"])
    assert done.exit_code == 0, done.output
    config, _ = load_config(path)
    assert config.extraction.max_chats == 200
    assert config.source.command == "uv" and config.source.args == ["run", "main.py"]

    shown = runner.invoke(walake_cli, ["config", "--config", str(path), "--show"])
    assert "max_messages_per_chat = 1000" in shown.output
    valid = runner.invoke(walake_cli, ["config", "--config", str(path), "--validate"])
    assert valid.exit_code == 0 and "valid" in valid.output


def test_validate_fails_with_exit_1(tmp_path, walake_cli):
    path = tmp_path / "walake.toml"
    path.write_text("[monitoring]\ncheck_interval_seconds = 0\n")
    done = CliRunner().invoke(walake_cli, ["config", "--config", str(path), "--validate"])
    assert done.exit_code == 1
    assert "monitoring.check_interval_seconds = 0: Input should be greater than 0" in (
        done.output)


def test_every_preset_round_trips_through_toml():
    for name in PRESETS:
        config = preset(name)
        assert load_config_from_text(to_toml(config)) == config


def load_config_from_text(text: str):  # noqa: ANN201
    from ingest.config import parse_config

    return parse_config(tomllib.loads(text))
