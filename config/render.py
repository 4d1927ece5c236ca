"""The effective configuration as YAML, for `ragbot config show`.

After defaults, several files and deep merging, "what is ragbot actually using?" needs
an answer one command away. This prints both blocks with every default filled in, in
the syntax of the config file itself (durations as Go strings, selectors and cleanup
entries as strings), so the output can be read against, or pasted into, a config.yaml.
Slack secrets are shown only as where they come from and whether they are set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from config.loader import secret_status
from config.models import SECRETS, Config


def effective_dict(config: Config, *, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The effective configuration as plain data, secrets replaced by their status."""
    data = config.model_dump(mode="json", exclude={"sources"})
    slack = data["ragbot"]["slack"]
    for name in SECRETS:
        slack[name] = secret_status(config.ragbot.slack, name, environ)
    return data


def render_effective(config: Config, *, environ: Mapping[str, str] | None = None) -> str:
    """YAML text of the effective configuration, with a header naming its sources."""
    if config.sources:
        sources = "\n".join(f"#   {p}" for p in config.sources)
        header = f"# Effective ragbot configuration, from (later files win):\n{sources}\n"
    else:
        header = "# Effective ragbot configuration: no config file given, defaults only.\n"
    header += (
        "# Defaults are filled in; keys other than velero:, ragbot: and the upgrade\n"
        "# settings are not used by ragbot. Secrets are never shown, only their source.\n"
    )
    body: str = yaml.safe_dump(
        effective_dict(config, environ=environ),
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1000,
    )
    return header + body
