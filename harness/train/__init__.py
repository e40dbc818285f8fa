"""A run: its options and run profiles, the set-up, each seed's training (the trainer, evaluation, checkpoints),
the results, sweeps."""
