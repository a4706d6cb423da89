"""`pulumi up` entry point: validate the stack config, then build and export the stack."""

from __future__ import annotations

import sys
from pathlib import Path

import pulumi

# Pulumi runs this directory as a script; make `stacks` importable as a package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stacks.config import StackConfigError
from stacks.program import build_stack, load_config

try:
    config = load_config()
except StackConfigError as error:
    # RunError: Pulumi prints the message alone, without a Python traceback.
    raise pulumi.RunError(str(error)) from None
stack = build_stack(config)
for key, value in stack.outputs.items():
    pulumi.export(key, value)
