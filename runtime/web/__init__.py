"""The generated web app: server-rendered pages (Jinja2, htmx, Alpine.js, ECharts) over the services.

Every page reads and writes through the records, process and reports services, so the
web enforces exactly the permissions the REST API does.
"""
