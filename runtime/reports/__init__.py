"""Dashboards compiled to SQL: one aggregate query per widget, with the viewer's row scope."""
