"""The fast Walsh–Hadamard transform (FWHT), pure torch, O(L log L), with its exact gradient.

H_L is the unnormalised Sylvester Hadamard matrix of size L = 2^K:

    H_1 = [1],   H_{2L} = [[H_L, H_L], [H_L, −H_L]] = H_2 ⊗ H_L,   H_L = H_Lᵀ,   H_L H_L = L·I.

`fwht(x)` computes x H_L along the last dimension. Since H_L = H_{b_1} ⊗ … ⊗ H_{b_k} for any split of the
K index bits into groups (b_j = 2^{s_j}, Σ s_j = K), it runs k ≈ K / 4 passes, each one matrix product of
the lowest s_j index bits with a small dense H_{b_j} that also rotates those bits to the top
(`out.view(b, M) = H_b · in.view(M, b)ᵀ`): after k passes every bit group has been transformed once and
the rotations add up to K bits, the original order. With b ≤ 16 each pass is one GEMM of ≤ 16
multiply-adds per element: O(L · b · K / log2 b) = O(L log L) work in few memory passes, CPU and GPU alike.

The gradient is exact: y = x H ⇒ ∂L/∂x = (∂L/∂y) Hᵀ = fwht(∂L/∂y). (The released code's backward
multiplies each pass by 1/√L, a leftover of a normalised transform; a Fastfood projection has two passes,
so there z's gradient through a tensor of L = 2^k entries is L times too small, a factor that differs
per tensor: `FastfoodBank(scaled_backward=True)` reproduces it, fidelity `said_backward: released`.)

`hadamard_head` and `hadamard_of_head` are the truncated and the zero-padded transforms Fastfood needs,
(u H_L)[:, :D] and pad_L(g) H_L, in about 60 % of a full transform when D is just above L/2. Functions
whose name ends in `_raw` or that take `out=` build no autograd graph; they are the kernels under
`fwht` and the Fastfood projections.
"""

from __future__ import annotations

import functools

import torch

MAX_BLOCK_BITS = 4  # b ≤ 16 per pass: measured fastest on CPU (larger blocks cost more multiply-adds)


def is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def next_power_of_two(n: int) -> int:
    """The smallest 2^k ≥ n (n ≥ 1)."""
    if n < 1:
        raise ValueError(f"expected a positive size, got {n}")
    return 1 << (n - 1).bit_length()


@functools.lru_cache(maxsize=64)
def _sylvester(size: int, dtype: torch.dtype, device: str) -> torch.Tensor:
    h = torch.ones(1, 1, dtype=dtype, device=device)
    while h.shape[0] < size:
        h = torch.cat((torch.cat((h, h), 1), torch.cat((h, -h), 1)), 0)  # (2s, 2s) = H_2 ⊗ H_s
    return h


def hadamard_matrix(size: int, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
    """The dense Sylvester H_size (size a power of two); small sizes only (it is size² numbers)."""
    if not is_power_of_two(size):
        raise ValueError(f"the Hadamard size must be a power of two, got {size}")
    return _sylvester(size, dtype, str(torch.device(device)))


def _bit_groups(bits: int, max_bits: int, odd: bool | None) -> list[int]:
    """Split `bits` index bits into passes of ≤ max_bits, as even as possible, with an odd or even count."""
    passes = -(-bits // max_bits)
    if odd is not None and passes % 2 != odd and passes < bits:
        passes += 1
    base, extra = divmod(bits, passes)
    return [base + (1 if i < extra else 0) for i in range(passes)]


def fwht_raw(
    x: torch.Tensor,
    out: torch.Tensor | None = None,
    scratch: torch.Tensor | None = None,
    max_block_bits: int = MAX_BLOCK_BITS,
) -> torch.Tensor:
    """x H_L along the last dimension, no autograd graph: (..., L) -> (..., L), L a power of two.

    `out` and `scratch` (contiguous, x's shape) avoid allocations; either may be x itself (x is then
    overwritten): the number of passes is chosen so that the first pass never writes over x.
    """
    size = x.shape[-1]
    if not is_power_of_two(size):
        raise ValueError(f"the transformed dimension must be a power of two, got {size}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point tensor, got {x.dtype}")
    rows = x.numel() // size
    flat = x.reshape(rows, size)  # (N, L)
    out = torch.empty_like(flat) if out is None else out.view(rows, size)
    if size <= 1 << max_block_bits:  # one dense product (into a new tensor first: out may be x)
        return out.copy_(flat @ hadamard_matrix(size, x.dtype, x.device)).view(x.shape)
    scratch = torch.empty_like(flat) if scratch is None else scratch.view(rows, size)
    if out.data_ptr() == scratch.data_ptr():
        raise ValueError("out and scratch must be different buffers")
    # pass j writes `out` when (passes − 1 − j) is even: an odd count writes out first, an even one scratch
    odd = True if scratch.data_ptr() == flat.data_ptr() else False if out.data_ptr() == flat.data_ptr() else None
    groups = _bit_groups(size.bit_length() - 1, max_block_bits, odd)
    source = flat
    for index, bits in enumerate(groups):
        block = 1 << bits
        rest = size // block
        h = hadamard_matrix(block, x.dtype, x.device)  # (b, b)
        target = out if (len(groups) - 1 - index) % 2 == 0 else scratch
        if rows == 1:  # (b, M) = H_b · (M, b)ᵀ: transform the lowest bits and rotate them to the top
            torch.mm(h, source.view(rest, block).t(), out=target.view(block, rest))
        else:
            torch.matmul(h, source.view(rows, rest, block).transpose(1, 2), out=target.view(rows, block, rest))
        source = target
    return out.view(x.shape)


def hadamard_head(
    u: torch.Tensor, rows: int, out: torch.Tensor | None = None, work: torch.Tensor | None = None
) -> torch.Tensor:
    """(u H_L)[:, :rows] for u of shape (k, L), computing only the kept outputs. (k, L) -> (k, rows).

    H_L = [[H, H], [H, −H]] with H = H_{L/2}: the first half of u H_L is (u_top + u_bot) H and the second
    (u_top − u_bot) H, of which only rows − L/2 entries are kept; rows ≤ L/p fold u's p blocks into one.
    With `work` (≥ k·L contiguous elements) u is used as scratch and overwritten; without, nothing is.
    """
    k, size = u.shape
    if not 1 <= rows <= size:
        raise ValueError(f"rows must be in 1..{size}, got {rows}")
    if work is None:
        u, work = u.clone(), u.new_empty(k * size)
    out = u.new_empty(k, rows) if out is None else out
    spare = u.view(-1)  # u's own memory is free once it has been read
    if rows == size:
        if out.is_contiguous():
            return fwht_raw(u, out=out, scratch=u)
        return out.copy_(fwht_raw(u, out=u, scratch=work[: k * size]))
    half = size // 2
    if rows <= half:  # the discarded second half: fold the blocks of the kept power of two
        kept = next_power_of_two(rows)
        folded = torch.sum(u.view(k, size // kept, kept), dim=1, out=work[: k * kept].view(k, kept))
        return hadamard_head(folded, rows, out, spare[: k * kept])
    top, bottom = u[:, :half], u[:, half:]
    total = torch.add(top, bottom, out=work[: k * half].view(k, half))  # (k, L/2)
    difference = torch.sub(top, bottom, out=work[k * half : k * size].view(k, half))  # (k, L/2)
    if k == 1:
        fwht_raw(total, out=out[:, :half], scratch=spare[: k * half])
    else:
        out[:, :half] = fwht_raw(total, out=spare[: k * half], scratch=total)
    hadamard_head(difference, rows - half, out[:, half:], spare)
    return out


def _periodic_of_head(g: torch.Tensor, size: int) -> torch.Tensor:
    """pad_L(g) H_L as one period c: the result is c tiled L / c.shape[1] times. (k, D) -> (k, P)."""
    k, length = g.shape
    period = next_power_of_two(length)
    if period == length:
        return fwht_raw(g.contiguous())
    if period < size:  # pad_L(g) = (pad_P(g), 0, …): its transform repeats pad_P(g) H_P
        return _periodic_of_head(g, period)
    out = g.new_empty(k, size)
    hadamard_of_head(g, size, out=out)
    return out


def hadamard_of_head(
    g: torch.Tensor, size: int, out: torch.Tensor | None = None, work: torch.Tensor | None = None
) -> torch.Tensor:
    """pad_L(g) H_L for g of shape (k, D), D ≤ L = size: the transpose of `hadamard_head`. -> (k, L).

    With pad(g) = (g_top, g_bot) the result is (a + c, a − c), a = g_top H, c = pad(g_bot) H, and c is
    periodic when g_bot is short. `work` (≥ k·L contiguous elements) avoids large allocations.
    """
    k, length = g.shape
    if not is_power_of_two(size) or not 1 <= length <= size:
        raise ValueError(f"need 1 ≤ D ≤ L with L a power of two, got D={length}, L={size}")
    out = g.new_empty(k, size) if out is None else out
    period = next_power_of_two(length)
    if period < size:
        small = _periodic_of_head(g, period)
        out.view(k, size // period, period).copy_(small[:, None, :])
        return out
    if length == size:
        return out.copy_(fwht_raw(g.contiguous())) if not out.is_contiguous() else fwht_raw(g.contiguous(), out=out)
    half = size // 2
    work = g.new_empty(k * size) if work is None else work[: k * size]
    a = work[: k * half].view(k, half).copy_(g[:, :half])
    a = fwht_raw(a, out=a, scratch=work[k * half :])  # (k, L/2) = g_top H
    c = _periodic_of_head(g[:, half:], half)  # (k, P): pad(g_bot) H, period P
    reps, period = half // c.shape[1], c.shape[1]
    torch.add(a.view(k, reps, period), c[:, None, :], out=out[:, :half].view(k, reps, period))
    torch.sub(a.view(k, reps, period), c[:, None, :], out=out[:, half:].view(k, reps, period))
    return out


class _FWHT(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return fwht_raw(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return fwht_raw(grad)  # exact: H is symmetric (no 1/√L factor)


def fwht(x: torch.Tensor) -> torch.Tensor:
    """x H_L along the last dimension, differentiable with the exact gradient. (..., L) -> (..., L)."""
    return _FWHT.apply(x)
