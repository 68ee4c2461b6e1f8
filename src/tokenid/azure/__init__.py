"""Azure billing: meter names, Cost Management export readers and reconciliation."""
