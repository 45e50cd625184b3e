"""The expression language: one parser and type checker, two compilers (Python and SQL)."""
