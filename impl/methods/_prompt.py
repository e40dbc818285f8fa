"""What the two prompt-tuning methods (Prompt tuning-R and -T) share: the encoder input [P; E(x)] they train,
P ∈ R^{p×d}, is no weight of T5, so neither folds into the stock model."""

from __future__ import annotations

# both methods' merge rule (`impl.registry.register`)
NOT_MERGEABLE = "its prompt is p extra input positions, not a weight of the stock T5"
