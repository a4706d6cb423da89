"""`python -m llmbox` is the `llmbox` command (e.g. under sudo, where PATH may lack it)."""

from llmbox.cli import main

main()
