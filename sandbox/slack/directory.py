"""Who and where in the sandbox Slack: the team, its people, user groups, channels and bot.

The Web API emulator answers `users.info`, `usergroups.users.list`, `conversations.info`
and `auth.test` from this directory, the sender signs requests as these people, and the
channel renderer prints their display names. The ids of the sandbox channel and of the
operator, approver and viewer come from `sandbox.cluster` (`SANDBOX_CHANNEL`,
`SANDBOX_USERS`), so the `config.yaml` the sandbox cluster writes grants rights to the
very users who send commands here. Plain frozen dataclasses: tests build other
directories by hand when they need to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.cluster import SANDBOX_CHANNEL, SANDBOX_USERS


@dataclass(frozen=True)
class Team:
    id: str
    name: str
    domain: str

    @property
    def url(self) -> str:
        return f"https://{self.domain}.slack.com/"


@dataclass(frozen=True)
class User:
    """A workspace member. `handle` is the sandbox's short name (`--as operator`)."""

    id: str
    handle: str
    name: str  # Slack's `name` (the legacy username)
    real_name: str
    display_name: str
    is_bot: bool = False
    deleted: bool = False
    tz: str = "Europe/Berlin"


@dataclass(frozen=True)
class Usergroup:
    id: str
    handle: str
    name: str
    members: tuple[str, ...]
    enabled: bool = True


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    members: frozenset[str]
    is_private: bool = False
    is_archived: bool = False
    created: int = 1_700_000_000
    topic: str = ""


@dataclass(frozen=True)
class Bot:
    """The app's bot user: what `auth.test` says about the bot token."""

    user_id: str
    bot_id: str
    app_id: str
    name: str


@dataclass(frozen=True)
class Directory:
    team: Team
    bot: Bot
    users: tuple[User, ...]
    usergroups: tuple[Usergroup, ...] = ()
    channels: tuple[Channel, ...] = ()
    _by_key: dict[str, User] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for u in self.users:
            self._by_key[u.id] = u
            self._by_key[u.handle] = u
            self._by_key[u.name] = u

    def user(self, key: str) -> User | None:
        """A user by id, sandbox handle or Slack name."""
        return self._by_key.get(key)

    def require_user(self, key: str) -> User:
        found = self.user(key)
        if found is None:
            known = ", ".join(u.handle for u in self.users if not u.is_bot)
            raise KeyError(f"no sandbox user {key!r} (known: {known})")
        return found

    def usergroup(self, key: str) -> Usergroup | None:
        return next((g for g in self.usergroups if key in (g.id, g.handle)), None)

    def channel(self, key: str) -> Channel | None:
        """A channel by id or name (with or without the leading '#')."""
        name = key.removeprefix("#")
        return next((c for c in self.channels if key == c.id or name == c.name), None)

    def display_name(self, user_id: str) -> str:
        u = self.user(user_id)
        if u is None:
            return user_id
        return u.display_name or u.real_name or u.name


# ----- the sandbox's own workspace -----------------------------------------------------------

TEAM = Team(id="T0SANDBOX1", name="Ragbot Sandbox", domain="ragbot-sandbox")
BOT = Bot(user_id="U0RAGBOT001", bot_id="B0RAGBOT001", app_id="A0RAGBOT001", name="ragbot")
#: A second approver, for two people approving at once; not granted anything by default.
SECOND_APPROVER = "U0APPROVER2"
APPROVERS_GROUP = "S0APPROVERS"
#: Slack's own bot, author of "/cmd failed with the error …" notices.
SLACKBOT = "USLACKBOT"
#: A channel the bot is not in: posting there gives `not_in_channel`.
OTHER_CHANNEL = "C0GENERAL01"


def sandbox_directory() -> Directory:
    """The sandbox workspace: an operator, an approver, a viewer with no rights, the bot."""
    people = (
        User(SANDBOX_USERS["operator"], "operator", "olivia", "Olivia Operator", "olivia.operator"),
        User(SANDBOX_USERS["approver"], "approver", "arjun", "Arjun Approver", "arjun.approver"),
        User(SANDBOX_USERS["viewer"], "viewer", "vera", "Vera Viewer", "vera.viewer"),
        User(SECOND_APPROVER, "approver2", "amara", "Amara Approver", "amara.approver"),
    )
    bot = User(BOT.user_id, "bot", BOT.name, "ragbot", "ragbot", is_bot=True)
    slackbot = User(SLACKBOT, "slackbot", "slackbot", "Slackbot", "Slackbot", is_bot=True)
    everyone = frozenset(u.id for u in (*people, bot))
    groups = (
        Usergroup(
            APPROVERS_GROUP,
            "ragbot-approvers",
            "Ragbot approvers",
            (SANDBOX_USERS["approver"], SECOND_APPROVER),
        ),
    )
    channels = (
        Channel(SANDBOX_CHANNEL, "ragbot-sandbox", everyone, topic="Backups and restores"),
        Channel(OTHER_CHANNEL, "general", everyone - {BOT.user_id}),
    )
    return Directory(TEAM, BOT, (*people, bot, slackbot), groups, channels)
