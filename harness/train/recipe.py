"""The recipe a task trains with: the spec's `training:` changed by the run profile and the command line, its
epochs, its global batch over this launch, and the record every checkpoint of it carries."""

from __future__ import annotations

from harness.model.record import RECORD_FORMAT, CheckpointRecord, DataRecord, harness_version
from harness.results.results_model import spec_hash
from harness.spec.fidelity import PAPER
from harness.spec.loader import override_key
from harness.train.batching import BatchPlan
from harness.train.context import RunContext
from harness.train.devices import launch
from harness.train.profiles import pretrained_source


def recipe_for(ctx: RunContext, task: str):
    """The spec's recipe with the profile's and the command line's changes; and the epochs for `task`.

    What the user sets explicitly (`--set training.…`, `--epochs`) always wins over the profile's defaults.
    """
    training, profile = ctx.loaded.spec.training, ctx.profile
    user_set = {override_key(o) for o in ctx.options.overrides}
    updates = {
        key: value
        for key, value in {
            "batch_size": profile.batch_size,
            "warmup_steps": profile.warmup_steps,
            "source_length": profile.source_length,
            "generation_max_length": profile.generation_max_length,
        }.items()
        if value is not None and f"training.{key}" not in user_set
    }
    if profile.min_learning_rate is not None and "training.learning_rate" not in user_set:
        updates["learning_rate"] = max(training.learning_rate, profile.min_learning_rate)
    recipe = training.model_copy(update=updates)
    epochs_set = any(key.startswith("training.epochs") for key in user_set)
    profile_epochs = None if epochs_set else profile.epochs
    # the spec's epochs, or at `rte_epochs: released` the released scripts' 3 for RTE (unless set explicitly)
    spec_epochs = training.epochs.per_task.get(task, training.epochs.default)
    recipe_epochs = (PAPER if epochs_set else ctx.fidelity).task_epochs(task, spec_epochs)
    epochs = ctx.options.epochs or profile_epochs or recipe_epochs
    return recipe, epochs


def batch_plan(recipe) -> BatchPlan:
    """The recipe's global batch over this launch's processes and the recipe's accumulation steps."""
    return BatchPlan(recipe.batch_size, launch().world_size, recipe.gradient_accumulation_steps)


def checkpoint_record(ctx: RunContext, task: str, recipe, eval_batch: int) -> CheckpointRecord:
    """What every checkpoint of this run records beside its tensors, to be rebuilt by `harness.load` and
    evaluated again by `harness eval`."""
    spec, paper, options = ctx.loaded.spec, ctx.profile.name == "paper", ctx.options
    origin = "files" if options.data_dir is not None else ("hub" if paper else "smoke")
    data = DataRecord(
        task=task, origin=origin, data_dir=str(options.data_dir) if options.data_dir else None,
        prefix_task_name=spec.tasks.prefix_task_name, data_seed=spec.training.data_seed,
        fidelity=ctx.fidelity.to_json(), max_train_samples=options.max_train_samples,
        source_length=recipe.source_length, generation_max_length=recipe.generation_max_length,
        eval_batch_size=eval_batch,
    )  # fmt: skip
    return CheckpointRecord(
        format=RECORD_FORMAT, harness_version=harness_version(), method=spec.method.name,
        arguments=ctx.loaded.resolved["method"]["args"], trainable=list(spec.trainable), spec=ctx.loaded.name,
        spec_hash=spec_hash(ctx.loaded.resolved), model=ctx.model_file,
        pretrained=pretrained_source(ctx.model_file, options.pretrained, options.model)[0] if paper else None,
        random_seed=None if paper else spec.training.seed,  # smoke: the random backbone, drawn again from it
        data=data,
    )  # fmt: skip
