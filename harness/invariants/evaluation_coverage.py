"""`evaluation_coverage`: at any world size, evaluation predicts each example exactly once, in order."""

from __future__ import annotations

from torch import nn

from harness.invariants.context import InvariantViolation
from harness.invariants.recipe_context import EchoModel, RecipeContext
from harness.invariants.registry import NoOptions, invariant


def sharded_predictions(dataset, tokenizer, batch_size: int, world: int, model: nn.Module) -> list[str]:
    """What `world` processes predict together: each rank's shard, merged as the gather merges them."""
    from harness.train.evaluation import eval_batches, generate_shard, merge_shards

    batches = eval_batches(len(dataset), batch_size)
    shards = [generate_shard(model, dataset, tokenizer, batches, rank, world, 20) for rank in range(world)]
    return merge_shards(shards, batches)


@invariant("evaluation_coverage")
def evaluation_coverage(ctx: RecipeContext, options: NoOptions) -> str:
    tokenizer = ctx.tokenizer()
    cases = 0
    for examples in (1, 7, 16, 33):
        dataset = ctx.dataset(examples, "validation")
        expected = [t.strip() for t in tokenizer.batch_decode([item["input_ids"] for item in dataset.items],
                                                                skip_special_tokens=True)]  # fmt: skip
        for batch_size in (4, 16):
            for world in (1, 2, 3, 5):
                got = sharded_predictions(dataset, tokenizer, batch_size, world, EchoModel())
                if got != expected:
                    wrong = next(i for i in range(min(len(got), len(expected))) if got[i] != expected[i]) if (
                        len(got) == len(expected)) else None  # fmt: skip
                    raise InvariantViolation(
                        f"{examples} examples, batch {batch_size}, {world} processes: {len(got)} predictions "
                        + (f"(the first wrong at example {wrong})" if wrong is not None else f"for {examples} examples")
                    )
                cases += 1
    return f"{cases} cases (1–33 examples, batch 4 and 16, 1–5 processes): every example once, in order"
