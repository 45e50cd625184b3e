"""Who is asking: the user behind a request, their roles and the departments of their team."""

from __future__ import annotations

from dataclasses import dataclass, field

ADMIN = "admin"
PUBLIC = "public"


@dataclass(frozen=True)
class Actor:
    """The caller of the records service.

    `team` holds the ids of the caller's department and every department below it;
    `department_id` is the caller's own department.
    `system` callers (start-up, seeding, the CLI) are not limited by permissions.
    """

    user_id: int | None
    username: str
    roles: frozenset[str] = frozenset()
    team: tuple[int, ...] = ()
    channel: str = "api"
    system: bool = False
    language: str = "zh"
    csrf_token: str | None = field(default=None, compare=False)
    department_id: int | None = None  # the caller's own department (the root of `team`)

    @property
    def admin(self) -> bool:
        """Admins and system callers may do everything."""
        return self.system or ADMIN in self.roles

    def via(self, channel: str) -> Actor:
        """The same caller through another channel (api, web, import, automation)."""
        return Actor(
            self.user_id,
            self.username,
            self.roles,
            self.team,
            channel,
            self.system,
            self.language,
            self.csrf_token,
            self.department_id,
        )


SYSTEM = Actor(None, "system", frozenset({ADMIN}), channel="system", system=True)
ANONYMOUS = Actor(None, "anonymous", frozenset({PUBLIC}), channel="api")
