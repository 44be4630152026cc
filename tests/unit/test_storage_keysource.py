"""Headless key sources: typed passphrase, key file, environment variable, systemd credential."""

from __future__ import annotations

import os
import re

import pytest

from appliance.errors import KeySourceError
from appliance.storage.keysource import EnvVar, KeyFile, Passphrase, SystemdCredential

SECRET = "口令-s3cret"


def _private_file(path, data: bytes, mode: int = 0o600):
    path.write_bytes(data)
    os.chmod(path, mode)
    return path


def test_passphrase_yields_utf8_and_hides_itself():
    source = Passphrase(SECRET)
    assert source.read() == SECRET.encode("utf-8")
    assert Passphrase(b"raw\x00bytes").read() == b"raw\x00bytes"
    assert SECRET not in repr(source)
    with pytest.raises(KeySourceError):
        Passphrase("").read()


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"secret\n", b"secret"), (b"secret\r\n", b"secret"), (b"secret", b"secret"), (b"secret\n\n", b"secret\n"),
     (b" spaced \n", b" spaced ")],
)
def test_key_file_strips_one_trailing_newline(tmp_path, content, expected):
    assert KeyFile(_private_file(tmp_path / "key", content)).read() == expected


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_key_file_readable_by_others_is_refused_with_the_fix(tmp_path, mode):
    path = _private_file(tmp_path / "key", b"secret\n", mode)
    with pytest.raises(KeySourceError) as err:
        KeyFile(path).read()
    assert f"chmod 600 {path}" in str(err.value)


def test_key_file_missing_empty_or_a_directory(tmp_path):
    with pytest.raises(KeySourceError, match="does not exist"):
        KeyFile(tmp_path / "nope").read()
    with pytest.raises(KeySourceError, match="is empty"):
        KeyFile(_private_file(tmp_path / "empty", b"\n")).read()
    with pytest.raises(KeySourceError, match="not a regular file"):
        KeyFile(tmp_path).read()


def test_key_file_repr_shows_path_not_content(tmp_path):
    path = _private_file(tmp_path / "key", b"topsecret\n")
    assert "topsecret" not in repr(KeyFile(path))
    assert str(path) in repr(KeyFile(path))


def test_env_var():
    env = {"DSNODE_PASSPHRASE": SECRET, "EMPTY": ""}
    assert EnvVar(environ=env).read() == SECRET.encode("utf-8")
    assert SECRET not in repr(EnvVar(environ=env))
    with pytest.raises(KeySourceError, match="OTHER is not set"):
        EnvVar("OTHER", environ=env).read()
    with pytest.raises(KeySourceError, match="is empty"):
        EnvVar("EMPTY", environ=env).read()


def test_env_var_reads_the_real_environment(monkeypatch):
    monkeypatch.setenv("DSNODE_TEST_PASSPHRASE", "from-env")
    assert EnvVar("DSNODE_TEST_PASSPHRASE").read() == b"from-env"


def test_systemd_credential(tmp_path):
    _private_file(tmp_path / "dsnode-passphrase", b"from-systemd\n", 0o400)
    source = SystemdCredential("dsnode-passphrase", environ={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert source.read() == b"from-systemd"
    assert "from-systemd" not in repr(source)


def test_systemd_credential_outside_systemd_says_so():
    with pytest.raises(KeySourceError) as err:
        SystemdCredential("dsnode-passphrase", environ={}).read()
    assert "CREDENTIALS_DIRECTORY" in str(err.value)
    assert "LoadCredential=dsnode-passphrase" in str(err.value)


def test_systemd_credential_missing_file_and_bad_names(tmp_path):
    with pytest.raises(KeySourceError, match="does not exist"):
        SystemdCredential("other", environ={"CREDENTIALS_DIRECTORY": str(tmp_path)}).read()
    for bad in ("", "../etc/shadow", "a/b", ".."):
        with pytest.raises(ValueError):
            SystemdCredential(bad)


def test_key_source_errors_have_chinese_text():
    err = KeySourceError("environment variable X is not set")
    assert "无法读取存储密钥" in err.message("zh_CN")
    assert err.exit_code == 11


def test_key_source_reasons_are_in_the_users_language(tmp_path):
    from appliance.errors import KeySourceError
    from appliance.storage.keysource import EnvVar, KeyFile

    path = tmp_path / "k"
    path.write_text("x")
    path.chmod(0o644)
    for source in (KeyFile(path), KeyFile(tmp_path / "missing"), EnvVar("DSNODE_NOT_SET_ANYWHERE", environ={})):
        with pytest.raises(KeySourceError) as err:
            source.read()
        zh, en = err.value.message("zh_CN"), err.value.message("en")
        assert zh != en and not re.search(r"\b(file|does not|exist|other users|environment|variable|is not set)\b", zh)
    with pytest.raises(KeySourceError) as err:
        KeyFile(path).read()
    assert f"chmod 600 {path}" in err.value.message("zh_CN")  # what to do, in either language
