"""The ``tokenplans`` subcommands, one module each (:mod:`tokenplans_adapters.main.cli`
builds the parser from their ``add`` functions)."""
