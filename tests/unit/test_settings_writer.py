"""The settings writer: a change lands in dsnode.toml, the rest of the file stays as it was, and a
bad value leaves the file untouched with a message naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.errors import ConfigError
from appliance.settings import check_config, config_file, load_settings, write_settings

FILE = """# the box in hall 3
node_name = "注塑车间"   # shown to other members
interfaces = [
    "192.168.1.20",
]

[broker]
max_inflight = 40

[[watch]]
folder = "/srv/export"
"""


def _load(path: Path):
    return load_settings(env={}, config_path=path)


def test_a_change_keeps_comments_tables_and_other_settings(tmp_path):
    path = tmp_path / "dsnode.toml"
    path.write_text(FILE, encoding="utf-8")
    write_settings(path, {"interfaces": ["192.168.1.21", "10.0.0.5"], "key_file": tmp_path / "key"})
    text = path.read_text(encoding="utf-8")
    assert "# the box in hall 3" in text and "# shown to other members" in text
    assert "192.168.1.20" not in text
    settings = _load(path)
    assert settings.interfaces == ("192.168.1.21", "10.0.0.5")
    assert settings.key_file == tmp_path / "key"
    assert settings.node_name == "注塑车间"
    assert settings.broker.max_inflight == 40 and [str(w.folder) for w in settings.watch] == ["/srv/export"]
    assert text.index("key_file") < text.index("[broker]"), "a new setting goes among the top-level ones"
    assert not [p for p in check_config(path) if "key_file" not in p.text.message("en")]


def test_none_removes_a_setting_and_a_missing_file_is_created(tmp_path):
    path = tmp_path / "conf" / "dsnode.toml"
    write_settings(path, {"key_env": "BOX_PASSPHRASE", "interfaces": []})
    assert _load(path).key_env == "BOX_PASSPHRASE"
    assert path.stat().st_mode & 0o077 == 0, "the file that says where the key is stays private"
    write_settings(path, {"key_env": None})
    assert _load(path).key_env is None
    assert "key_env" not in path.read_text(encoding="utf-8")
    write_settings(path, {"key_env": None})  # removing what is not there is fine


@pytest.mark.parametrize("changes, words", [
    ({"interfaces": ["not-an-address"]}, "IP addresses"),
    ({"lang": "fr"}, "zh_CN, en"),
    ({"kdf_profile": "fastest"}, "kdf_profile"),
    ({"broker": {}}, "unknown setting"),
])
def test_a_bad_value_leaves_the_file_as_it_was(tmp_path, changes, words):
    path = tmp_path / "dsnode.toml"
    path.write_text(FILE, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        write_settings(path, changes)
    assert words in caught.value.message("en")
    assert path.read_text(encoding="utf-8") == FILE


def test_the_file_written_is_the_one_load_settings_reads(tmp_path):
    assert config_file({"DSNODE_CONFIG": str(tmp_path / "x.toml")}) == tmp_path / "x.toml"
    assert config_file({}).name == "dsnode.toml"
