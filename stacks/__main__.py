"""`pulumi up` entry point: validate the stack config, then build and export the stack."""

from __future__ import annotations

import sys
from pathlib import Path

import pulumi

# Pulumi runs this directory as a script; make `stacks` importable as a package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stacks.program import build_stack, load_config

stack = build_stack(load_config())
for key, value in stack.outputs.items():
    pulumi.export(key, value)
