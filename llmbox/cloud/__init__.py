"""Cloud helpers for the platform engineer: the boto3 preflight and the Ansible inventory.

Nothing here imports boto3 at module level: ``llmbox inventory`` works without AWS
credentials or the SDK, and ``llmbox report`` never pays for the import.
"""
