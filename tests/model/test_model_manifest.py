"""The model manifest format (llmbox/model/manifest.py) and `llmbox model manifest`.

The role reads the same file through roles/model_store/module_utils (a symlink) and on
hosts, where llmbox is not installed: it must stay standard library only."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmbox.cli import main
from llmbox.model import manifest as m

REPO = Path(__file__).resolve().parents[2]
ROLE_COPY = REPO / "roles/model_store/module_utils/llmbox_model_manifest.py"


def _folder(root: Path) -> Path:
    root.mkdir()
    (root / "config.json").write_text('{"model_type": "llama"}')
    (root / "tokenizer.json").write_text('{"version": "1.0"}')
    (root / "model-00001-of-00002.safetensors").write_bytes(b"\x01" * 5000)
    (root / "model-00002-of-00002.safetensors").write_bytes(b"\x02" * 3000)
    (root / ".cache").mkdir()
    (root / ".cache" / "lock").write_text("not part of the model")
    return root


def test_cli_writes_every_file_with_size_and_sha256(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "model")
    out = tmp_path / "pins" / "model.manifest.json"
    result = CliRunner().invoke(main, ["model", "manifest", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["llmbox_model_manifest"] == 1
    names = [f["name"] for f in data["files"]]
    assert (
        names
        == sorted(names)
        == [
            "config.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "tokenizer.json",
        ]
    )
    shard = next(f for f in data["files"] if f["name"].startswith("model-00002"))
    assert shard["size"] == 3000
    assert shard["sha256"] == hashlib.sha256(b"\x02" * 3000).hexdigest()
    assert f"wrote {out}: 4 files, 8041 bytes" in result.output  # stderr, mixed in
    # What the CLI writes is what the role's checks read.
    files = m.load(out)
    m.check_folder(folder, files)


def test_cli_prints_to_stdout_and_refuses_an_empty_folder(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "model")
    printed = CliRunner().invoke(main, ["model", "manifest", str(folder)])
    assert printed.exit_code == 0
    assert m.parse(json.loads(printed.stdout))[0].name == "config.json"
    (tmp_path / "empty").mkdir()
    empty = CliRunner().invoke(main, ["model", "manifest", str(tmp_path / "empty")])
    assert empty.exit_code == 2
    assert "holds no files to pin" in empty.output


def test_a_tampered_shard_is_named(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "model")
    files = m.parse(
        m.to_data([m.ManifestFile(n, *m.hash_file(folder / n)) for n in m.folder_files(folder)])
    )
    with (folder / "model-00002-of-00002.safetensors").open("r+b") as shard:
        shard.seek(100)
        shard.write(b"\xff")
    with pytest.raises(m.ManifestError, match=r"^model-00002-of-00002\.safetensors: sha256 "):
        m.check_folder(folder, files)
    (folder / "tokenizer.json").write_text("{}")
    with pytest.raises(
        m.ManifestError, match=r"^tokenizer\.json: size 2 bytes, the manifest says 18"
    ):
        m.check_folder(folder, files)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "../etc/passwd", "size": 1, "sha256": "a" * 64}, "not a relative path"),
        ({"name": "/abs", "size": 1, "sha256": "a" * 64}, "not a relative path"),
        ({"name": "a/.git/x", "size": 1, "sha256": "a" * 64}, "not a relative path"),
        ({"name": "x.bin", "size": -1, "sha256": "a" * 64}, r"x\.bin: size -1 is not a byte count"),
        ({"name": "x.bin", "size": "10", "sha256": "a" * 64}, r"x\.bin: size '10'"),
        ({"name": "x.bin", "size": True, "sha256": "a" * 64}, r"x\.bin: size True"),
        (
            {"name": "x.bin", "size": 1, "sha256": "A" * 64},
            r"x\.bin: sha256 'A+' is not 64 lowercase",
        ),
    ],
)
def test_bad_entries_are_named(entry: dict[str, object], message: str) -> None:
    with pytest.raises(m.ManifestError, match=message):
        m.parse({"llmbox_model_manifest": 1, "files": [entry]})


def test_bad_manifests_are_refused() -> None:
    with pytest.raises(m.ManifestError, match="not an llmbox model manifest"):
        m.parse({"files": []})
    with pytest.raises(m.ManifestError, match="non-empty list"):
        m.parse({"llmbox_model_manifest": 1, "files": []})
    twice = {"name": "a", "size": 1, "sha256": "b" * 64}
    with pytest.raises(m.ManifestError, match="lists a file twice: a"):
        m.parse({"llmbox_model_manifest": 1, "files": [twice, twice]})


def test_the_version_does_not_depend_on_order() -> None:
    a, b = m.ManifestFile("a", 1, "a" * 64), m.ManifestFile("b", 2, "b" * 64)
    assert m.digest([a, b]) == m.digest([b, a])
    assert m.digest([a, b]) != m.digest([a, m.ManifestFile("b", 3, "b" * 64)])


def test_hugging_face_urls_at_a_pinned_commit() -> None:
    revision = "0123456789abcdef0123456789abcdef01234567"
    base = m.hf_base_url("https://huggingface.co/", "HuggingFaceTB/SmolLM2-135M-Instruct", revision)
    assert base == f"https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct/resolve/{revision}"
    assert m.file_url(base, "onnx/model q.onnx") == f"{base}/onnx/model%20q.onnx"
    with pytest.raises(m.ManifestError, match="'main' is not a pinned commit"):
        m.hf_base_url("https://huggingface.co", "HuggingFaceTB/SmolLM2-135M-Instruct", "main")
    with pytest.raises(m.ManifestError, match="'SmolLM2' is not owner/name"):
        m.hf_base_url("https://huggingface.co", "SmolLM2", revision)


def test_start_check_names_the_changed_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    version = _folder(tmp_path / "v1")
    files = [m.ManifestFile(n, *m.hash_file(version / n)) for n in m.folder_files(version)]
    m.write_record(version, files)
    link = tmp_path / "model"
    link.symlink_to("v1")
    assert m._main(["check", str(link)]) == 0
    (version / "config.json").write_text('{"model_type": "other"}')
    assert m._main(["check", str(link)]) == 1
    assert "config.json: size/mtime/ctime/inode" in capsys.readouterr().err


def test_the_role_reads_this_very_file_and_it_imports_only_the_standard_library() -> None:
    assert ROLE_COPY.is_symlink()
    assert ROLE_COPY.resolve() == Path(m.__file__).resolve()
    tree = ast.parse(ROLE_COPY.read_text())
    imported = {
        ((node.module or "") if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {
        "__future__",
        "hashlib",
        "json",
        "os",
        "re",
        "sys",
        "urllib",
        "collections",
        "dataclasses",
        "pathlib",
    }
