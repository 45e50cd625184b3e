"""Tables: Formloom's own system tables and one table per form."""
