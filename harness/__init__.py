"""compacter-harness: validate specs, count budgets, check invariants (and, later, train and evaluate).

The command line is `python -m harness`; every command is a thin layer over these library modules.
"""
