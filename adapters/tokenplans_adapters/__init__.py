"""The edges of tokenplans: one package per technology, each implementing or driving the core."""
