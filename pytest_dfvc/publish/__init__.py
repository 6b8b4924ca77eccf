"""What people see: the terminal summary, report.md and report.html, README badges, and the
GitHub Actions fan-out. Reads the verdicts; never runs a cell."""
