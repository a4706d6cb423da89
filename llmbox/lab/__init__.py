"""Throw-away systemd test hosts on this Linux machine (systemd-nspawn, no Docker), and
the playbook runner and demo built on them: the role tests and `llmbox demo` share them."""
