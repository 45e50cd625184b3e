"""Identity: users, departments, roles, passwords, API tokens and sessions."""
