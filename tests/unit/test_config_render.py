"""`ragbot config show`: the effective configuration as YAML, secrets redacted."""

from __future__ import annotations

from pathlib import Path

import yaml

from config.loader import load_config
from config.models import Config
from config.render import effective_dict, render_effective

BOT = """\
velero:
  enabled: true
  backup:
    ttl: 168h
    backupConfig:
      deployments:
        edp: [Helm/edp, Secret/tls-secret, Secret/tls-secret, "Deployment/selector:app in (b,a)"]
ragbot:
  slack:
    channel: C0123ABCD
    signing_secret_file: signing
  access:
    approve: {users: [U0BBBB2]}
  restore:
    ready_timeout: 90m
  schedule: {cron: "0 2 * * *"}
"""


def load(tmp_path: Path) -> tuple[Path, Config]:
    (tmp_path / "signing").write_text("file-secret-value\n")
    path = tmp_path / "ragbot.yaml"
    path.write_text(BOT)
    return path, load_config([path], environ={})


def test_secrets_are_redacted_with_their_source(tmp_path: Path) -> None:
    _, config = load(tmp_path)
    env = {"SLACK_BOT_TOKEN": "xoxb-env-secret-value"}
    text = render_effective(config, environ=env)
    assert "xoxb-env-secret-value" not in text
    assert "file-secret-value" not in text
    slack = yaml.safe_load(text)["ragbot"]["slack"]
    assert slack["bot_token"] == "<from env SLACK_BOT_TOKEN: set>"
    assert slack["app_token"] == "<not set: set env SLACK_APP_TOKEN or ragbot.slack.app_token_file>"
    assert slack["signing_secret"] == f"<from file {tmp_path / 'signing'}: set>"
    assert slack["signing_secret_file"] == str(tmp_path / "signing")


def test_env_secret_overrides_a_file_and_says_so(tmp_path: Path) -> None:
    _, config = load(tmp_path)
    data = effective_dict(config, environ={"SLACK_SIGNING_SECRET": "x"})
    status = data["ragbot"]["slack"]["signing_secret"]
    assert (
        status == "<from env SLACK_SIGNING_SECRET: set, overrides ragbot.slack.signing_secret_file>"
    )


def test_missing_and_empty_secret_files(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    path = tmp_path / "c.yaml"
    path.write_text("ragbot: {slack: {bot_token_file: empty, app_token_file: /nonexistent/x}}")
    slack = effective_dict(load_config([path], environ={}), environ={})["ragbot"]["slack"]
    assert slack["bot_token"] == f"<from file {tmp_path / 'empty'}: empty>"
    assert slack["app_token"] == "<from file /nonexistent/x: unreadable: No such file or directory>"


def test_values_are_written_in_config_syntax(tmp_path: Path) -> None:
    path, config = load(tmp_path)
    text = render_effective(config, environ={})
    assert text.startswith(
        f"# Effective ragbot configuration, from (later files win):\n#   {path}\n"
    )
    data = yaml.safe_load(text)
    backup = data["velero"]["backup"]
    assert backup["ttl"] == "168h"
    assert backup["itemOperationTimeout"] == "2h0m0s"
    assert backup["backupConfig"]["deployments"]["edp"] == [
        "Helm/edp",
        "Secret/tls-secret",
        "Deployment/selector: app in (a,b)",
    ]
    assert (
        backup["backupConfig"]["orSelectors"][0]
        == "app.kubernetes.io/component=deployment-manifest"
    )
    assert data["ragbot"]["restore"]["ready_timeout"] == "90m"
    assert data["ragbot"]["restore"]["step_timeout"] == "300s"
    assert data["ragbot"]["access"]["approve"]["users"] == ["U0BBBB2"]
    assert data["upgrade_backup_max_age_hours"] == 6
    assert "sources" not in data


def test_defaults_only_header() -> None:
    text = render_effective(load_config([], environ={}), environ={})
    assert text.startswith("# Effective ragbot configuration: no config file given, defaults only.")


def test_output_loads_back_to_the_same_configuration(tmp_path: Path) -> None:
    _, config = load(tmp_path)
    data = yaml.safe_load(render_effective(config, environ={}))
    for name in ("bot_token", "app_token", "signing_secret"):
        del data["ragbot"]["slack"][name]  # status lines, not config keys
    again = tmp_path / "again.yaml"
    again.write_text(yaml.safe_dump(data))
    reloaded = load_config([again], environ={})
    assert reloaded.model_dump(exclude={"sources"}) == config.model_dump(exclude={"sources"})
