"""`dsnode config check|show` through the real CLI: each problem named with its line and what to
write instead, in the user's language; the example file the packages install is valid."""

from __future__ import annotations

from tests.e2e.conftest import ROOT


def test_config_check_names_each_problem_with_its_line_and_the_fix(cli, tmp_path):
    bad = tmp_path / "dsnode.toml"
    bad.write_text('log_levle = "INFO"\nlang = "fr"\n\n[broker]\nmax_queue = 5\nmax_inflight = 0\n', encoding="utf-8")
    proc = cli.run("--config", str(bad), "config", "check", ok=False)
    assert proc.returncode == 10
    lines = proc.stdout.splitlines()
    assert "dsnode.toml:1: unknown setting log_levle: write log_level instead" in lines[1]
    assert "dsnode.toml:2:" in lines[2] and "zh_CN, en" in lines[2]
    assert "dsnode.toml:5: unknown broker limit max_queue: write max_queued instead" in lines[3]
    assert "dsnode.toml:6:" in lines[4] and "default is 1000" in lines[4]
    zh = cli.run("--config", str(bad), "config", "check", ok=False, env=cli.env(DSNODE_LANG="zh_CN"))
    assert "未知设置 log_levle：应写为 log_level" in zh.stdout


def test_config_check_reports_a_syntax_error_with_its_line_and_other_commands_refuse_the_file(cli, tmp_path):
    bad = tmp_path / "dsnode.toml"
    bad.write_text('log_level = "INFO"\nname = \n', encoding="utf-8")
    proc = cli.run("--config", str(bad), "config", "check", ok=False)
    assert proc.returncode == 10 and "dsnode.toml:2:" in proc.stdout
    other = cli.run("--config", str(bad), "status", ok=False)
    assert other.returncode == 10 and "Traceback" not in other.stderr


def test_the_example_settings_file_is_valid_and_show_says_where_each_value_comes_from(cli):
    example = ROOT / "packaging" / "dsnode.toml"
    assert "are valid" in cli.run("--config", str(example), "config", "check").stdout
    shown = cli.run("--config", str(example), "--log-level", "INFO", "config", "show").stdout
    assert "log_level       INFO  [--log-level]" in shown and "max_inflight" in shown
