"""The web designer for admins: forms, workflows, approvals and dashboards, drawn and edited in
the browser, written to the same definition files a consultant edits, published through the plan."""
