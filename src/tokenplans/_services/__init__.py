"""Use cases: the services adapters call, over ports received by constructor, and the one
read-roll-decide-commit loop they share."""
