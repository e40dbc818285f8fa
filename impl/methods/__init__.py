"""One module per method, named exactly like its spec; importing this package registers them all."""

from impl.methods import compacter, compacter_pp, phm_adapter  # noqa: F401
