"""Backbones, a method applied to them, and the parameter budget counted from the model."""
