"""One module per method, named exactly like its spec; importing this package registers them all."""

from impl.methods import (  # noqa: F401  (importing registers)
    adapter,
    adapter_drop,
    bitfit,
    compacter,
    compacter_pp,
    full_finetune,
    ia3,
    intrinsic_said,
    lora,
    low_rank_adapter,
    pfeiffer_adapter,
    phm_adapter,
    prompt_tuning_random,
    prompt_tuning_tokens,
)
