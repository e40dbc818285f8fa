"""results.json (the record), comparability with the paper's recipe, and the report."""
