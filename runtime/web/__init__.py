"""The server-rendered web pages (login now; lists, forms and inboxes as they land)."""
