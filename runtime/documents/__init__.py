"""Documents: records rendered to HTML and PDF from the Jinja2 templates of their pack."""
