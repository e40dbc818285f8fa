"""A run: profiles, the output folder, the global batch, the trainer, evaluation, checkpoints, sweeps."""
