"""Text no database can store: NUL, and unpaired UTF-16 surrogates.

PostgreSQL refuses NUL in text ("cannot contain NUL (0x00) bytes"), and a lone surrogate
such as the JSON escape "\\ud800" is no Unicode character at all, so it cannot be encoded
as UTF-8 for either database (or for an answer). Such text is refused where it enters:
request bodies, query strings and headers (runtime/api/limits.py), and the records
service's converters, whatever the channel.
"""

from __future__ import annotations

import re

BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
BAD_TEXT_MESSAGE = "must not contain NUL characters or unpaired surrogates"


def storable(text: str) -> bool:
    """True when every database can store `text`."""
    return BAD_TEXT.search(text) is None


def scrubbed(text: str) -> str:
    """`text` without the characters no database can store (for names such as a file's)."""
    return BAD_TEXT.sub("", text)


def shown(text: str) -> str:
    """`text` safe to echo in an answer: bad characters written as escapes."""
    return BAD_TEXT.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
