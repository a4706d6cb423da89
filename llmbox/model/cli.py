"""``llmbox model``: pin what a host serves. ``llmbox model manifest DIR`` hashes every
file of a model folder into the manifest the model_store role installs it by."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from llmbox.model.manifest import ManifestFile, dumps, folder_files, hash_file


@click.group()
def model() -> None:
    """Model folders: make the manifest that pins every file (name, size, sha256)."""


@model.command()
@click.argument(
    "directory", type=click.Path(exists=True, file_okay=False, dir_okay=True, path_type=Path)
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the manifest to FILE (atomically; .json or .yaml, same JSON text) "
    "instead of standard output.",
)
def manifest(directory: Path, out: Path | None) -> None:
    """Hash every file of the model folder DIRECTORY into a manifest.

    \b
    The manifest lists each file (hidden ones left out) with its size in bytes and
    sha256; model_store installs the folder only when every file matches it:
      llmbox model manifest ./SmolLM2-hf --out smollm2.manifest.json
      ansible-playbook playbooks/site.yml -e model_store_manifest=smollm2.manifest.json \\
          -e model_store_source=folder -e model_store_local_path=./SmolLM2-hf ...
    Progress (bytes hashed) goes to standard error.
    """
    names = folder_files(directory)
    if not names:
        raise click.BadParameter(f"{directory} holds no files to pin", param_hint="DIRECTORY")
    total = sum((directory / name).stat().st_size for name in names)
    files: list[ManifestFile] = []
    label = f"hashing {len(names)} files"
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        for name in names:
            size, sha256 = hash_file(directory / name, progress=bar.update)
            files.append(ManifestFile(name, size, sha256))
    text = dumps(files)
    if out is None:
        click.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=out.parent, delete=False, suffix=".partial") as tmp:
        tmp.write(text)
    Path(tmp.name).chmod(0o644)
    Path(tmp.name).replace(out)
    click.echo(f"wrote {out}: {len(files)} files, {total} bytes", err=True)
