"""A small commented pack for the designer tests, and a runtime serving it with the designer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.designer.extension import designer_extension
from runtime.boot import Runtime, start
from tests.support import write_files

FILES = {
    "app.yaml": """\
        # The CRM app used by the designer tests.
        app: crm
        label: {zh: 客户关系, en: CRM}
        version: 1.0.0
        roles: [{key: rep}]
        """,
    "forms/lead.yaml": """\
        form: lead
        label: {zh: 线索, en: Lead}
        title_field: company

        fields:
          # --- Who
          - key: company
            type: text
            label: {zh: 公司名称, en: Company}   # the name on the business licence
            required: true
          - key: contact_name
            type: text
            label: {zh: 联系人, en: Contact name}
          - key: email
            type: email
            label: {zh: 邮箱, en: Email}

          # --- How big
          - key: budget
            type: money
            label: {zh: 预算, en: Budget}
            min: 0

        # Reps see and change their own leads.
        owner_field: owner_user
        permissions:
          - {roles: [rep], can: [create, read, update], scope: all}

        layout:
          - section: {zh: 联系人信息, en: Contact}
            columns: 2
            fields: [company, contact_name, email]
          - section: {zh: 规模, en: Size}
            fields: [budget]
        """,
    "workflows/lead.yaml": """\
        # Lead status.
        workflow: lead_status
        form: lead
        field: status
        states:
          - {key: new, initial: true}
          - {key: won, final: true}   # a signed deal
        transitions:
          - action: win
            from: new
            to: won
            guard: "budget > 0"   # no budget, no deal
        """,
}


def write_crm(root: Path) -> Path:
    """The pack folder (a status field is added to the lead form for the workflow)."""
    files = dict(FILES)
    files["forms/lead.yaml"] = files["forms/lead.yaml"].replace(
        """          - key: budget""",
        """          - key: status
            type: select
            options: [new, won]
          - key: owner_user
            type: user
            default: current_user
          - key: budget""",
    )
    return write_files(root, files)


def serve_designer(pack: Path, db_url: str, scratch: Path) -> Runtime:
    """The pack served with the designer, following its own publishes at once."""
    live: list[Any] = []
    extension = designer_extension([pack], scratch / "backups", published=lambda: live[0].refresh())
    runtime = start([pack], db_url, scratch / "files", extensions=[extension])
    live.append(runtime.live)
    return runtime
