"""Authoring: the `formloom` command line (and later the web designer and publisher)."""
