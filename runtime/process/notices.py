"""The approval engine's own messages: new tasks, reminders, escalations, nudges, outcomes, copies.

Each is a template in both languages over the record and a few values (the form's label,
the record's title such as QT-2026-00002, the approval's and step's labels); it is stored
with the notification and rendered in the reader's language when read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from runtime.model.common import Labels
from runtime.model.process import Approval, ApprovalStep
from runtime.process.notifications import notify
from runtime.schema.system import users

if TYPE_CHECKING:
    from runtime.process.engine import ProcessEngine, Target

WHAT = "{{ form }} {{ title }}"  # 报价单 QT-2026-00002
WHERE = "{{ approval }} · {{ step }}"
SAYS_ZH = "{{ ' 意见：' ~ comment if comment }}"
SAYS_EN = "{{ ' — ' ~ comment if comment }}"
MESSAGES: dict[str, dict[str, str]] = {
    "task": {"zh": f"待您审批：{WHAT}（{WHERE}）", "en": f"Waiting for your approval: {WHAT} ({WHERE})"},
    "consult": {
        "zh": f"{{{{ who }}}} 请您先审批：{WHAT}（{WHERE}）",
        "en": f"{{{{ who }}}} asks you to approve first: {WHAT} ({WHERE})",
    },
    "remind": {
        "zh": f"催办：{WHAT} 仍在等待审批（{WHERE}）",
        "en": f"Reminder: {WHAT} is still waiting for approval ({WHERE})",
    },
    "nudge": {
        "zh": f"{{{{ who }}}} 催办：{WHAT} 等待您审批（{WHERE}）",
        "en": f"{{{{ who }}}} is waiting for your approval of {WHAT} ({WHERE})",
    },
    "escalated": {
        "zh": f"审批超时，已转交给您：{WHAT}（{WHERE}，原审批人 {{{{ who }}}}）",
        "en": f"Overdue approval escalated to you: {WHAT} ({WHERE}, waiting on {{{{ who }}}})",
    },
    "approved": {
        "zh": f"已审批通过：{WHAT}（{{{{ approval }}}}）",
        "en": f"Approved: {WHAT} ({{{{ approval }}}})",
    },
    "rejected": {"zh": f"已驳回：{WHAT}（{WHERE}）{SAYS_ZH}", "en": f"Rejected: {WHAT} ({WHERE}){SAYS_EN}"},
    "returned": {
        "zh": f"已退回，请修改后重新提交：{WHAT}（{{{{ approval }}}}）{SAYS_ZH}",
        "en": f"Returned to you to revise: {WHAT} ({{{{ approval }}}}){SAYS_EN}",
    },
    "sent_back": {
        "zh": f"已退回到「{{{{ step }}}}」重新审批：{WHAT}（{{{{ approval }}}}）{SAYS_ZH}",
        "en": f"Sent back to {{{{ step }}}}: {WHAT} ({{{{ approval }}}}){SAYS_EN}",
    },
    "cc": {
        "zh": f"抄送：{WHAT} {{{{ outcome }}}}（{{{{ approval }}}}{{{{ ' · ' ~ step if step }}}}）",
        "en": f"CC: {WHAT} {{{{ outcome }}}} ({{{{ approval }}}}{{{{ ' · ' ~ step if step }}}})",
    },
}
OUTCOMES = {
    "approved": Labels(zh="已审批通过", en="approved"),
    "rejected": Labels(zh="已驳回", en="rejected"),
    "passed": Labels(zh="本步骤已通过", en="step passed"),
}


def tell(
    engine: ProcessEngine,
    conn: Connection,
    target: Target,
    people: list[int],
    kind: str,
    approval: Approval,
    step: ApprovalStep | None = None,
    *,
    tasks_of: dict[int, int] | None = None,
    key: str | None = None,
    **values: Any,
) -> int:
    """Send the built-in message `kind` about the record to `people`; answers how many were sent."""
    if not people:
        return 0
    record = engine.stored(conn, target)
    context: dict[str, Any] = {
        "form": target.form.form.label,
        "app": target.app.app.app,
        "title": title_of(target, record),
        "approval": approval.label or Labels(zh=approval.approval, en=approval.approval),
        "step": (step.label or Labels(zh=step.name, en=step.name)) if step is not None else "",
        **values,
    }
    return notify(
        conn,
        people,
        Labels(**MESSAGES[kind]),
        record,
        engine.now(),
        where=target.where,
        key=key,
        email=engine.mail,
        context=context,
        tasks_of=tasks_of,
    )


def title_of(target: Target, record: dict[str, Any]) -> str:
    """The record's title as people know it (its title field, such as QT-2026-00002), else `#id`."""
    value = record.get(target.form.title_field) if target.form.title_field != "id" else None
    return str(value) if value not in (None, "") else f"#{target.record_id}"


def display_name(conn: Connection, user_id: int | None) -> str:
    """A user's display name ('' for nobody)."""
    if user_id is None:
        return ""
    return str(conn.execute(select(users.c.display_name).where(users.c.id == user_id)).scalar() or "")
