"""The bounds of the numbers a user gives, one name each, shared by every command and file that takes them.

Each is far above any real use (the paper trains 20 epochs at most; MNLI, the largest task, has 393k training
examples; T5 sources are 512 tokens) and far below where the Trainer's step arithmetic, numpy's int64 indices or
the memory of a generation would give out: a typo (`--epochs 1000000000`) is one line, not an hours-long schedule
or a traceback after the output folder exists. A module of its own, the bottom layer, so that `--help` states them
without importing torch and a checkpoint record checks the same bounds as the run that wrote it.
"""

SEED_MAX = 2**32 - 1  # numpy's seeds are 32-bit; torch's are 64-bit: a seed every RNG the harness seeds accepts
MAX_LENGTH = 100_000  # tokens: source_length, generation_max_length, `predict --max-length`, `data --source-length`
MAX_EPOCHS = 1_000
MAX_TRAIN_SAMPLES = 1_000_000_000  # `run --max-train-samples`, `data --train-size`, a record's max_train_samples
MAX_LOGGING_STEPS = 1_000_000_000
