"""A small pack for the web tests: one form with most field types, a child table and a workflow."""

from __future__ import annotations

from pathlib import Path

from tests.support import write_files, write_pack

DEAL = """\
form: deal
label: {zh: 交易, en: Deal}
title_field: title
owner_field: owner
fields:
  - {key: title, type: text, label: {en: Title, zh: 标题}, required: true}
  - {key: email, type: email, label: {en: Email}}
  - {key: kind, type: select, label: {en: Kind}, options: [new, renewal]}
  - key: reason
    type: long_text
    label: {en: Renewal reason}
    visible_when: "kind == 'renewal'"
    required_when: "kind == 'renewal'"
  - {key: tags, type: multi_select, options: [hot, cold]}
  - {key: amount, type: money, label: {en: Amount}}
  - {key: discount, type: percent, label: {en: Discount}}
  - {key: net, type: money, label: {en: Net}, formula: "COALESCE(amount, 0) * (1 - COALESCE(discount, 0))"}
  - {key: secret, type: integer, label: {en: Secret}, hidden_for: [rep]}
  - {key: urgent, type: boolean, label: {en: Urgent}}
  - {key: due, type: date}
  - {key: met_at, type: datetime}
  - {key: status, type: select, options: [open, pending, won], default: open}
  - {key: owner, type: user, default: current_user}
  - {key: account, type: link, to: account}
  - {key: lines, type: table, form: deal_line}
  - {key: lines_total, type: money, formula: "SUM(lines.line_total)"}
  - {key: contract, type: attachment}
duplicates: [[email]]
permissions:
  - {roles: [rep], can: [create, read, update], scope: own}
  - {roles: [boss], can: [create, read, update, delete, export], scope: all}
layout:
  - section: {en: Main, zh: 主要}
    columns: 2
    fields: [title, email, kind, reason, tags, amount, discount, net, secret, urgent, due, met_at,
             status, owner, account]
  - section: {en: Lines}
    tab: {en: Details, zh: 明细}
    fields: [lines, lines_total, contract]
list:
  columns: [title, amount, status, owner]
  sort: [title]
"""
DEAL_LINE = """\
form: deal_line
label: {en: Deal line}
child: true
fields:
  - {key: item, type: text, required: true}
  - {key: qty, type: integer, required: true, min: 1}
  - {key: price, type: money}
  - {key: line_total, type: money, formula: "qty * COALESCE(price, 0)"}
"""
ACCOUNT = """\
form: account
label: {en: Account}
title_field: name
owner_field: owner
fields:
  - {key: name, type: text, required: true}
  - {key: owner, type: user, default: current_user}
permissions:
  - {roles: [rep], can: [create, read], scope: own}
  - {roles: [boss], can: [create, read, update], scope: all}
"""
WORKFLOW = """\
workflow: deal_status
form: deal
field: status
states:
  - {key: open, initial: true}
  - {key: pending}
  - {key: won, final: true}
transitions:
  - action: submit
    label: {en: Submit, zh: 提交}
    from: open
    to: pending
    effects:
      - start_approval: big_deal
  - {action: approve, from: pending, to: won, system: true}
  - {action: back, from: pending, to: open, system: true}
  - action: win
    label: {en: Mark won, zh: 赢单}
    from: open
    to: won
    guard: "amount > 0"
    guard_message: {en: A won deal needs an amount}
    fields: [account]
    require: [account]
"""

APPROVAL = """\
approval: big_deal
form: deal
label: {en: Big deal approval, zh: 大单审批}
steps:
  - name: boss
    label: {en: The boss, zh: 老板}
    approvers: {role: boss}
on_approved:
  - transition: approve
on_rejected:
  - transition: back
"""

BOARD = """\
dashboard: deals
label: {en: Deals, zh: 交易看板}
roles: [boss]
widgets:
  - key: by_status
    label: {en: Deals by status}
    chart: bar
    source: deal
    dimensions: [{key: status, field: status}]
    measures: [{key: deals, agg: count}]
"""

APP = """\
app: crm
label: {zh: 客户关系, en: CRM}
version: 1.0.0
timezone: Asia/Shanghai
roles: [{key: rep}, {key: boss}]
"""


def deal_pack(root: Path) -> Path:
    """The pack folder, written under `root`."""
    write_pack(root, {"deal": DEAL, "deal_line": DEAL_LINE, "account": ACCOUNT}, app_key="crm")
    return write_files(
        root,
        {
            "app.yaml": APP,
            "workflows/deal.yaml": WORKFLOW,
            "approvals/big_deal.yaml": APPROVAL,
            "dashboards/deals.yaml": BOARD,
        },
    )
