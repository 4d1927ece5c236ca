"""Slack-facing handlers: command parsing, authorization, Block Kit rendering."""
