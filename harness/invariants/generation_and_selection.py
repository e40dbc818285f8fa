"""`generation_and_selection`: greedy generation up to the recipe's length; evaluation and a checkpoint every
epoch; the best validation `average` is the checkpoint kept and restored."""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness.invariants.context import InvariantViolation
from harness.invariants.recipe_context import EchoModel, RecipeContext, max_difference, trainable_state
from harness.invariants.registry import NoOptions, invariant


class ScriptedScores:
    """A scorer returning a given validation average per epoch, to see which epoch the run keeps."""

    def __init__(self, averages: list[float]) -> None:
        self.averages, self.calls = averages, 0

    def __call__(self, predictions: list[str]) -> dict[str, float]:
        value = self.averages[min(self.calls, len(self.averages) - 1)]
        self.calls += 1
        return {"average": value}


@invariant("generation_and_selection")
def generation_and_selection(ctx: RecipeContext, options: NoOptions) -> str:
    from safetensors.torch import load_file

    from harness.model.record import ADAPTER_FILE
    from harness.train.evaluation import predict_all

    recipe = ctx.recipe(batch_size=8, warmup_steps=0)
    echo = EchoModel()
    predict_all(echo, ctx.dataset(3, "validation"), ctx.tokenizer(), 2, recipe.generation_max_length)
    settings = {key: value for call in echo.calls for key, value in call.items()}
    wanted = {"max_length": recipe.generation_max_length, "num_beams": 1, "do_sample": False}
    if any(call != wanted for call in echo.calls):
        raise InvariantViolation(f"generation settings {settings}, the paper's {wanted}")

    averages = [10.0, 30.0, 20.0]  # epoch 2 is the best
    train, validation = ctx.dataset(8), ctx.dataset(2, "validation")
    with tempfile.TemporaryDirectory() as folder:
        model = ctx.model()
        trainer = ctx.trainer(Path(folder), model, recipe, len(averages), train, validation, ScriptedScores(averages))
        trainer.train()
        args = trainer.args
        every_epoch = args.eval_strategy == "epoch" and args.save_strategy == "epoch" and args.load_best_model_at_end
        by_average = args.metric_for_best_model in ("average", "eval_average") and args.greater_is_better
        if not (every_epoch and by_average):
            raise InvariantViolation(
                f"evaluation {args.eval_strategy}, saving {args.save_strategy}, best by {args.metric_for_best_model} "
                f"(greater is better: {args.greater_is_better}); the paper: every epoch, the highest validation average"
            )
        best = Path(trainer.state.best_model_checkpoint or "")
        expected = Path(folder) / "checkpoint-2"  # one step per epoch: epoch 2 ends at step 2
        if best != expected:
            raise InvariantViolation(
                f"validation averages {averages}: kept {best.name or 'nothing'}, not {expected.name}"
            )
        kept = load_file(str(best / ADAPTER_FILE))
        difference, where = max_difference(trainable_state(model), {n: kept[n] for n in trainable_state(model)})
        if difference != 0.0:
            raise InvariantViolation(
                f"the restored weights differ from the best checkpoint by {difference:.3e} at {where}"
            )
    return f"greedy to {recipe.generation_max_length} tokens; averages {averages}: epoch 2 kept and restored"
