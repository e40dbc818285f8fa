"""The Intrinsic-SAID module: z, λ and the Fastfood projections P_i of every base tensor, and

    θ_i = θ_i⁰ + λ_i · P_i(z)

materialised around each forward by hooks (the method and the rest of its formulas: `impl.methods.intrinsic_said`)."""

from __future__ import annotations

import hashlib
from collections import defaultdict

import torch
from torch import nn

from impl.layers.fastfood import FastfoodBank, Workspace, derive_seed

NAME = "intrinsic_said"
MAX_CHUNK_ELEMENTS = 1 << 25  # k · L per bank: bounds the (k, L) temporaries of one projection call


class IntrinsicSAID(nn.Module):
    """z (d′−m−1), λ (m+1) and the Fastfood projections of every base tensor of the model it is built on."""

    def __init__(
        self, model: nn.Module, intrinsic_dimension: int, projection_seed: int, scaled_backward: bool = False
    ) -> None:
        super().__init__()
        targets = list(model.named_parameters())  # unique tensors: the tied embedding once
        m = len(targets)
        if intrinsic_dimension <= m + 1:  # the method refuses it first, naming the argument
            raise ValueError(f"intrinsic_dimension {intrinsic_dimension} must exceed m + 1 = {m + 1}")
        device = targets[0][1].device
        self.intrinsic_dimension, self.projection_seed = intrinsic_dimension, projection_seed
        self.z = nn.Parameter(torch.zeros(intrinsic_dimension - m - 1, device=device))  # (d′ − m − 1,)
        self.lambdas = nn.Parameter(torch.ones(m + 1, device=device))  # (m + 1,); λ_m is unused
        owners = defaultdict(list)
        for module in model.modules():
            for attribute, parameter in module._parameters.items():
                if parameter is not None:
                    owners[id(parameter)].append((module, attribute))
        self.names = [name for name, _ in targets]  # θ_i's name in the base model's named_parameters()
        # plain lists (not submodules): where each θ_i lives, as (module, attribute) pairs
        self._owners = [owners[id(parameter)] for _, parameter in targets]
        groups: dict[int, list[int]] = defaultdict(list)
        for index, (_, parameter) in enumerate(targets):
            groups[parameter.numel()].append(index)
        self._members: list[list[int]] = []
        banks = []
        for size, indices in groups.items():
            per_bank = max(1, MAX_CHUNK_ELEMENTS // (1 << (size - 1).bit_length()))
            for start in range(0, len(indices), per_bank):
                members = indices[start : start + per_bank]
                seeds = [derive_seed(projection_seed, self.names[i]) for i in members]
                bank = FastfoodBank(self.z.numel(), size, seeds, device=device, scaled_backward=scaled_backward)
                banks.append(bank)
                self._members.append(members)
        self.banks = nn.ModuleList(banks)
        for bank, members in zip(self.banks, self._members, strict=True):
            bank.register_buffer("members", torch.tensor(members, device=device), persistent=False)
        self.workspace = Workspace()
        self.materialisations = 0  # how many times every θ_i was computed (tests count them)
        self._depth = 0
        self._originals: list[torch.Tensor] | None = None
        self._cache: tuple[tuple, list[torch.Tensor]] | None = None

    @property
    def tensors(self) -> int:
        """m: the number of base tensors."""
        return len(self.names)

    def base_parameters(self) -> list[torch.Tensor]:
        """θ⁰_i, read from their owners (the Parameters outside a forward pass)."""
        return [owners[0][0]._parameters[owners[0][1]] for owners in self._owners]

    def materialise(self) -> list[torch.Tensor]:
        """θ_i = θ_i⁰ + λ_i · P_i(z) for every base tensor, in `named_parameters()` order (autograd-aware)."""
        bases = self.base_parameters()
        weights: list[torch.Tensor | None] = [None] * len(bases)
        for bank, members in zip(self.banks, self._members, strict=True):
            if not bank.generated:
                bank.generate(self.z.device)
            theta = getattr(bank, "theta", None)
            if theta is None or theta.device != self.z.device or theta.dtype != self.z.dtype:
                theta = torch.empty(bank.rows, bank.out_features, device=self.z.device, dtype=self.z.dtype)
                bank.theta = theta  # (k, D): reused every step, its rows are the materialised θ_i
            scales = self.lambdas.index_select(0, bank.members)  # (k,)
            outputs = bank(self.z, scales, [bases[i] for i in members], out=theta, workspace=self.workspace)
            for index, output in zip(members, outputs, strict=True):
                weights[index] = output
        self.materialisations += 1
        return weights

    def _weights(self) -> list[torch.Tensor]:
        """The θ_i for this forward pass: fresh under autograd, else cached per version of z, λ and θ⁰."""
        bases = self.base_parameters()
        tracked = [self.z, self.lambdas, *bases]
        if torch.is_grad_enabled() and any(t.requires_grad for t in tracked):
            self._cache = None  # the (k, D) buffers are about to be overwritten
            return self.materialise()
        key = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in tracked)
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                self._cache = (key, self.materialise())
        return self._cache[1]

    def enter(self) -> None:
        """Install θ_i in place of θ_i⁰; only the outermost of nested hooked calls does it."""
        self._depth += 1
        if self._depth == 1:
            self._originals = self.base_parameters()
            weights = self._weights()  # if this raises, exit() (always called) restores the originals
            for owners, weight in zip(self._owners, weights, strict=True):
                for module, attribute in owners:
                    module._parameters[attribute] = weight

    def exit(self) -> None:
        """Put the Parameters θ_i⁰ back after the outermost call (a call whose enter never ran is ignored)."""
        if self._depth == 0:
            return
        self._depth -= 1
        if self._depth == 0 and self._originals is not None:
            for owners, original in zip(self._owners, self._originals, strict=True):
                for module, attribute in owners:
                    module._parameters[attribute] = original
            self._originals = None

    def checkpoint_metadata(self) -> dict[str, str]:
        """Stored with every checkpoint (`impl.state`): what it takes to rebuild the same projections."""
        return {
            f"{NAME}.projection_seed": str(self.projection_seed),
            f"{NAME}.intrinsic_dimension": str(self.intrinsic_dimension),
            f"{NAME}.projection_fingerprint": self.fingerprint(),
        }

    def checkpoint_mismatch(self, metadata: dict[str, str]) -> str | None:
        """Why a checkpoint cannot be loaded into this model (None when it can)."""
        expected = self.checkpoint_metadata()
        if f"{NAME}.projection_seed" not in metadata:
            return f"the checkpoint does not record {NAME}.projection_seed: its projections cannot be rebuilt"
        for key in (f"{NAME}.projection_seed", f"{NAME}.intrinsic_dimension", f"{NAME}.projection_fingerprint"):
            if metadata.get(key) != expected[key]:
                return (
                    f"{key} is {metadata.get(key)!r} in the checkpoint but {expected[key]!r} in this model "
                    "(rebuild the method with the checkpoint's projection_seed and intrinsic_dimension; "
                    "a different fingerprint means this torch draws other random projections from that seed)"
                )
        return None

    def fingerprint(self) -> str:
        """A hash of the seed and of the first draws of every projection."""
        digest = hashlib.sha256(str(self.projection_seed).encode())
        for bank in self.banks:
            digest.update(bank.fingerprint().encode())
        return digest.hexdigest()[:16]

    def extra_repr(self) -> str:
        return (
            f"intrinsic_dimension={self.intrinsic_dimension}, tensors={self.tensors}, "
            f"projection_seed={self.projection_seed}, banks={len(self.banks)}"
        )


class _Enter:
    """Forward pre-hook: materialise and install θ (a callable object, so deepcopy rebinds it)."""

    def __init__(self, said: IntrinsicSAID) -> None:
        self.said = said

    def __call__(self, module: nn.Module, args: tuple) -> None:
        self.said.enter()


class _Exit:
    """Forward hook (also run when the forward raises): put θ⁰ back after the outermost call."""

    def __init__(self, said: IntrinsicSAID) -> None:
        self.said = said

    def __call__(self, module: nn.Module, args: tuple, output):
        self.said.exit()
        return None


def attach_intrinsic_said(
    model: nn.Module, intrinsic_dimension: int, projection_seed: int, scaled_backward: bool = False
) -> None:
    """Register `IntrinsicSAID` as `model.intrinsic_said` with its hooks on the model, encoder and decoder."""
    said = IntrinsicSAID(model, intrinsic_dimension, projection_seed, scaled_backward)
    model.add_module(NAME, said)
    entries = [model, *(getattr(model, stack) for stack in ("encoder", "decoder") if hasattr(model, stack))]
    for module in entries:  # what training, evaluation and generate call
        module.register_forward_pre_hook(_Enter(said))
        module.register_forward_hook(_Exit(said), always_call=True)
