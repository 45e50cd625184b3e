"""Public intakes: forms anyone may submit without signing in (see runtime/model/intake.py)."""
