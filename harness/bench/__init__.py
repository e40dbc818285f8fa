"""The efficiency benchmark: per-method step time and memory, the PHM layer algorithms, their report."""
