"""Pack scenarios: `tests/*.yaml` files that drive a pack's app on a clock (`formloom test`).

model.py (the language and its JSON Schema), loading.py (files → runs, located problems)
with checks.py (names checked against the pack), harness.py (the pack served on a database
with a manual clock) with reset.py (the database emptied between runs), clock.py (moving
time), execute.py (steps) with expectations.py and compare.py (what must hold), results.py,
runner.py and command.py (the command), staging.py (`formloom worker --at`).
docs/scenarios.md is the guide.
"""
