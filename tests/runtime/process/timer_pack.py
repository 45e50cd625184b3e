"""A tiny pack for the job and worker tests: items whose timer adds 1 to `fired` a minute after they open."""

from __future__ import annotations

from pathlib import Path

from tests.support import write_files, write_pack

ITEM = """\
form: item
label: {en: Item}
title_field: title
fields:
  - {key: title, type: text, label: {en: Title}}
  - {key: status, type: select, label: {en: Status}, options: [open, closed]}
  - {key: fired, type: integer, label: {en: Fired}, default: 0}
"""

WORKFLOW = """\
workflow: item_flow
form: item
field: status
states:
  - {key: open, initial: true}
  - {key: closed, final: true}
transitions:
  - {action: close, from: open, to: closed}
timers:
  - key: remind
    state: open
    after: "1m"
    effects:
      - set: {fired: "fired + 1"}
"""


def item_pack(root: Path) -> Path:
    """App `t` with form `item` and its workflow; the timer fires in state `open` after a minute."""
    write_pack(root, {"item": ITEM})
    return write_files(root, {"workflows/item.yaml": WORKFLOW})
