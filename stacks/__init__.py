"""The llmbox Pulumi program: GPU hosts on AWS with guardrails and a price tag.

``__main__.py`` is what ``pulumi up`` runs; it reads the stack config, validates it
(:mod:`stacks.config`) and calls :func:`stacks.program.build_stack`, which the unit
tests call directly with their own config objects under Pulumi's mocks.
"""
