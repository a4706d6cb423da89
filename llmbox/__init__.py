"""llmbox: provision, serve, measure and cost open LLMs on your own GPUs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("llmbox")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
