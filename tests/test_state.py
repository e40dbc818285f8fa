"""Trainable-only safetensors checkpoints: nothing overwritten, nothing half-loaded."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from impl.state import CheckpointMismatchError, load_trainable, save_trainable, trainable_state


@pytest.fixture
def model(check_context):
    return check_context("compacter_pp").method_model().model


def test_the_file_holds_exactly_the_trainable_tensors(model, tmp_path):
    path = save_trainable(model, tmp_path / "a.safetensors", {"method": "compacter_pp"})
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(trainable_state(model)) == names
    assert load_trainable(model, path) == {"method": "compacter_pp"}


def test_an_existing_file_is_never_overwritten(model, tmp_path):
    path = save_trainable(model, tmp_path / "a.safetensors")
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        save_trainable(model, path)
    assert path.read_bytes() == before


def test_missing_or_unexpected_tensors_are_refused_and_nothing_is_loaded(model, tmp_path):
    state = trainable_state(model)
    dropped = sorted(state)[0]
    partial = {k: torch.zeros_like(v) for k, v in state.items() if k != dropped}
    save_file(partial, str(tmp_path / "partial.safetensors"))
    before = {k: v.clone() for k, v in trainable_state(model).items()}
    with pytest.raises(CheckpointMismatchError, match="1 trainable parameter"):
        load_trainable(model, tmp_path / "partial.safetensors")
    extra = {**state, "encoder.block.0.layer.1.lora.weight": torch.zeros(2)}
    save_file(extra, str(tmp_path / "extra.safetensors"))
    with pytest.raises(CheckpointMismatchError, match="1 unexpected"):
        load_trainable(model, tmp_path / "extra.safetensors")
    assert all(torch.equal(v, before[k]) for k, v in trainable_state(model).items())


def test_a_shape_mismatch_is_refused(model, tmp_path):
    state = trainable_state(model)
    name = next(k for k in state if k.endswith("phm_rule"))
    save_file({**state, name: torch.zeros(2, 2, 2)}, str(tmp_path / "shape.safetensors"))
    with pytest.raises(CheckpointMismatchError, match="shape"):
        load_trainable(model, tmp_path / "shape.safetensors")


def test_a_transposed_tensor_with_the_same_size_is_refused(model, tmp_path):
    """s_i of shape (p, r) saved as (r, p): the same number of entries, another tensor."""
    state = trainable_state(model)
    name = next(k for k, v in state.items() if k.endswith("phm_weight_left") and v.shape[-1] != v.shape[-2])
    save_file({**state, name: state[name].transpose(-1, -2).contiguous()}, str(tmp_path / "t.safetensors"))
    before = {k: v.clone() for k, v in trainable_state(model).items()}
    with pytest.raises(CheckpointMismatchError, match=f"{name} has shape"):
        load_trainable(model, tmp_path / "t.safetensors")
    assert all(torch.equal(v, before[k]) for k, v in trainable_state(model).items())
