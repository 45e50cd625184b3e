"""Read a page's form the way a browser would submit it (inputs, ticked boxes, text areas, choices)."""

from __future__ import annotations

from html.parser import HTMLParser


class FormReader(HTMLParser):
    """The name/value pairs the first `<form method=post>` on a page (outside templates) submits."""

    def __init__(self, action: str) -> None:
        super().__init__(convert_charrefs=True)
        self.action = action
        self.pairs: list[tuple[str, str]] = []
        self.inside = False
        self.template = 0
        self.textarea: str | None = None
        self.text = ""
        self.select: str | None = None
        self.chosen: str | None = None
        self.first_option: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        at = {k: v or "" for k, v in attrs}
        if tag == "template":
            self.template += 1
        if self.template:
            return
        if tag == "form" and at.get("action") == self.action:
            self.inside = True
        if tag == "option" and self.select is not None:
            self._option(at)
        if not self.inside or not at.get("name"):
            return
        if tag == "input":
            kind = at.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in at:
                return
            if kind not in ("submit", "button", "file"):
                self.pairs.append((at["name"], at.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "textarea":
            self.textarea, self.text = at["name"], ""
        elif tag == "select":
            self.select, self.chosen, self.first_option = at["name"], None, None

    def _option(self, at: dict[str, str]) -> None:
        value = at.get("value", "")
        if self.first_option is None:
            self.first_option = value
        if "selected" in at:
            self.chosen = value

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "template":
            self.template -= 1
        elif self.template:
            return
        elif tag == "textarea" and self.textarea is not None:
            self.pairs.append((self.textarea, self.text.removeprefix("\n")))
            self.textarea = None
        elif tag == "select" and self.select is not None:
            chosen = self.chosen if self.chosen is not None else self.first_option
            self.pairs.append((self.select, chosen or ""))
            self.select = None
        elif tag == "form":
            self.inside = False


def submitted(html: str, action: str) -> list[tuple[str, str]]:
    """What submitting the form whose action is `action` sends, unchanged."""
    reader = FormReader(action)
    reader.feed(html)
    return reader.pairs
