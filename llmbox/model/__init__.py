"""Model folders: the manifest that pins every file of a model (``llmbox model``)."""
