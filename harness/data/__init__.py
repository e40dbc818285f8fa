"""The paper's data protocol: tasks' files, splits, formats, metrics, toy and smoke data, the offline tokenizer."""
