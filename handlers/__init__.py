"""Slack-facing handlers: command parsing, authorization, Block Kit rendering.

Pure code between Slack and the cluster layer (DESIGN.md layout): the Bolt listeners and
the reconciler in `bot/` call these, and nothing here talks to Slack or builds HTTP.

- `handlers.commands`: the verb table, `parse(command, text)`, `help_text(command)`.
- `handlers.access`: `authorize`, `can_approve`, `UsergroupCache`.
- `handlers.blocks`: every message the bot sends, as `{"text", "blocks"}`.
- `handlers.views`: typed views of the restore record, Velero results, schedule, alerts.
- `handlers.limits`: `check_message`, Slack's Block Kit limits.
"""
