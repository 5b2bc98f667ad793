"""Values: plans, accounts, ledger entries, payment records, the principal, errors and the
shared limits. The bottom layer: it imports nothing else of the core."""
