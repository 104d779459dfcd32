"""neural: the single top-level import name of the neural-mlops distribution."""
