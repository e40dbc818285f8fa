"""Exit codes (GUIDE.md contracts): 0 success; 1 a budget or invariant does not hold; 2 bad input."""

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
