"""Plan and publish definition changes without losing data: diff, checks, DDL, backups, history."""
