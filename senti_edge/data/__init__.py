"""Package data: the model registry and grammars."""
