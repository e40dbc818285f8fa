"""The spec layer: the schema, the loader, model files, the paper's tasks and the invariant vocabulary (no
torch)."""
