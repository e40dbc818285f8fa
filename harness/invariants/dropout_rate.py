"""`dropout_rate`: every dropout of the trained model runs at the recipe's rate (and 0 means deterministic)."""

from __future__ import annotations

import torch
from torch import nn

from harness.invariants.context import InvariantViolation, logits
from harness.invariants.recipe_context import RecipeContext
from harness.invariants.registry import NoOptions, invariant


def dropout_rates(model: nn.Module) -> list[tuple[str, float]]:
    """Every dropout site of a T5-family model: nn.Dropout modules, and every module holding a float
    `dropout` rate for a functional dropout (T5's and mT5's attention weights), found by what it holds,
    not by class, so a family's attention class of its own is not missed."""
    sites = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Dropout):
            sites.append((name, module.p))
        elif isinstance(getattr(module, "dropout", None), float):
            sites.append((f"{name}.dropout (functional, e.g. attention weights)", module.dropout))
    return sites


@invariant("dropout_rate")
def dropout_rate(ctx: RecipeContext, options: NoOptions) -> str:
    rate = ctx.spec.training.dropout
    tokenizer, data = ctx.tokenizer(), ctx.dataset(2)
    inputs = {key: [item[key] for item in data.items] for key in ("input_ids", "attention_mask")}
    batch = tokenizer.pad(inputs, return_tensors="pt")  # (2, S)
    batch["labels"] = torch.tensor([d["labels"][:1] for d in data.items])
    sites = 0
    for wanted in sorted({rate, 0.0, 0.37}):
        model = ctx.model(dropout=wanted)
        found = dropout_rates(model)
        wrong = [(name, p) for name, p in found if p != wanted]
        if not found or wrong:
            raise InvariantViolation(f"dropout {wanted}: {len(wrong)} of {len(found)} sites differ, e.g. {wrong[:2]}")
        model.train()
        with torch.no_grad():
            train_mode = model(**batch).logits
        same = torch.equal(train_mode, logits(model, batch))
        if same != (wanted == 0.0):
            raise InvariantViolation(f"dropout {wanted}: training-mode logits {'equal' if same else 'differ from'} "
                                     "evaluation-mode logits")  # fmt: skip
        sites = len(found)
    return f"{sites} dropout sites at the recipe's {rate} (and at 0 and 0.37 when asked); 0 is deterministic"
