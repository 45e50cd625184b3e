"""Pack scenarios: `tests/*.yaml` files that drive a pack's app on a clock (`formloom test`).

model.py (the language), loading.py (files → runs, located problems), harness.py (the app
on a fresh database), clock.py (moving time), execute.py (steps and expectations),
compare.py (expected against answered values), runner.py and command.py (the command).
docs/scenarios.md is the guide.
"""
