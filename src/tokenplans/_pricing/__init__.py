"""Pricing model calls: provider usage normalised into exclusive counts, and pricers that
turn it into credits exactly (docs/pricing.md). The public names are re-exported by
:mod:`tokenplans` and :mod:`tokenplans.ports` from :mod:`.book` and :mod:`.quotes`."""
