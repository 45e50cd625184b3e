"""The durable process engine: workflows, approvals, timers, automations and notifications."""
