"""model_store with a model that is a folder (Hugging Face format), on a booted Debian 12
test host: every file checked against the manifest `llmbox model manifest` writes, the
new version switched to only when complete, the previous one never lost.

The Hugging Face source is tested against a local server with the hub's URL layout
(<endpoint>/<repo>/resolve/<revision>/<file>) on the test bridge; huggingface.co itself
cannot be reached here."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from playbook_runner import PlaybookResult, converge_role

from llmbox.cli import main
from llmbox.lab.testhosts import TestHost, TestNetwork
from llmbox.model.manifest import digest, load

pytestmark = pytest.mark.real_host

DEST = "/var/lib/llmbox/folder-test"
NAME = "tiny-hf"
LINK = f"{DEST}/{NAME}"
CHECK = "/usr/local/lib/llmbox/llmbox_model_manifest.py"
HF_REPO = "llmbox-test/tiny-hf"
REV1 = "1111111111111111111111111111111111111111"
REV2 = "2222222222222222222222222222222222222222"
SHARD1 = "model-00001-of-00002.safetensors"
SHARD2 = "model-00002-of-00002.safetensors"


class _Hub(http.server.SimpleHTTPRequestHandler):
    """Serves files like the hub; records each request; cuts the paths in ``cut`` short
    (the full Content-Length, half the bytes, then the connection closes)."""

    requests: list[tuple[str, str]]
    cut: set[str]

    def do_GET(self) -> None:
        self.requests.append(("GET", self.path))
        if self.path not in self.cut:
            super().do_GET()
            return
        body = Path(self.translate_path(self.path)).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True

    def do_HEAD(self) -> None:
        self.requests.append(("HEAD", self.path))
        super().do_HEAD()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Hub:
    def __init__(self, root: Path, bridge_address: str) -> None:
        self.root = root
        handler: type[_Hub] = type("Handler", (_Hub,), {"requests": [], "cut": set()})
        self.handler = handler
        self.server = http.server.ThreadingHTTPServer(
            (bridge_address, 0), functools.partial(handler, directory=str(root))
        )
        self.url = f"http://{bridge_address}:{self.server.server_address[1]}"

    @property
    def requests(self) -> list[tuple[str, str]]:
        return self.handler.requests

    def publish(self, folder: Path, revision: str) -> str:
        """Puts ``folder`` at the hub path of ``revision``; returns that path."""
        path = f"/{HF_REPO}/resolve/{revision}"
        target = self.root / path.lstrip("/")
        target.mkdir(parents=True)
        for file in folder.iterdir():
            (target / file.name).write_bytes(file.read_bytes())
        return path


@pytest.fixture
def hub(tmp_path: Path, test_network: TestNetwork) -> Iterator[Hub]:
    served = Hub(tmp_path / "hub", test_network.bridge_address)
    (tmp_path / "hub").mkdir()
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        served.server.shutdown()
        served.server.server_close()


@pytest.fixture
def host(office_hosts: tuple[TestHost, TestHost]) -> Iterator[TestHost]:
    d12 = office_hosts[0]
    assert d12.distro == "debian12"
    try:
        yield d12
    finally:
        d12.ssh(f"rm -rf {DEST}")


def make_model(folder: Path) -> Path:
    """A synthetic HF-format folder: config, tokenizer, two shards of random bytes."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "llama", "num_hidden_layers": 2}')
    (folder / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "BPE"}}')
    (folder / SHARD1).write_bytes(os.urandom(300_000))
    (folder / SHARD2).write_bytes(os.urandom(200_000))
    return folder


def manifest_of(folder: Path) -> Path:
    """The manifest as IT staff make it: `llmbox model manifest DIR --out FILE`."""
    out = folder.with_name(folder.name + ".manifest.json")
    result = CliRunner().invoke(main, ["model", "manifest", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def hf_vars(hub: Hub, manifest: Path, revision: str) -> dict[str, Any]:
    return {
        "model_store_dir": DEST,
        "model_store_filename": NAME,
        "model_store_manifest": str(manifest),
        "model_store_source": "hf",
        "model_store_hf_repo": HF_REPO,
        "model_store_hf_revision": revision,
        "model_store_hf_endpoint": hub.url,
    }


def folder_vars(folder: Path, manifest: Path) -> dict[str, Any]:
    return {
        "model_store_dir": DEST,
        "model_store_filename": NAME,
        "model_store_manifest": str(manifest),
        "model_store_source": "folder",
        "model_store_local_path": str(folder),
    }


def converge(
    host: TestHost, tmp_path: Path, extra: dict[str, Any], check: bool = False
) -> PlaybookResult:
    return converge_role("model_store", [host], tmp_path, extra, check=check)


def said(result: PlaybookResult) -> str:
    """The run's output with line wrapping undone (the YAML callback folds long messages)."""
    return " ".join(result.stdout.split())


def installed_sha256(host: TestHost) -> dict[str, str]:
    lines = host.ssh(f"cd {LINK}/ && sha256sum *").stdout.splitlines()
    return {line.split()[1]: line.split()[0] for line in lines}


def expected_sha256(folder: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in folder.iterdir()}


def version_of(manifest: Path) -> str:
    return digest(load(manifest))


def start_check(host: TestHost) -> tuple[int, str]:
    """The serving units' start-time check, run as an unprivileged user."""
    done = host.ssh(f"runuser -u nobody -- /usr/bin/python3 {CHECK} check {LINK}", check=False)
    return done.returncode, done.stderr


def test_hf_folder_at_a_pinned_commit_is_installed_verified_and_idempotent(
    host: TestHost, hub: Hub, tmp_path: Path
) -> None:
    model = make_model(tmp_path / "v1")
    manifest = manifest_of(model)
    base = hub.publish(model, REV1)
    result = converge(host, tmp_path, hf_vars(hub, manifest, REV1))
    assert result.rc == 0, result.stdout[-4000:]
    # Every size asked (HEAD) before the first byte is downloaded, at the hub's URLs.
    methods = [method for method, _ in hub.requests]
    assert methods.index("GET") > max(i for i, m in enumerate(methods) if m == "HEAD")
    assert ("GET", f"{base}/{SHARD2}") in hub.requests
    assert installed_sha256(host) == expected_sha256(model)
    assert host.ssh(f"readlink {LINK}").stdout.strip() == f".{NAME}.versions/{version_of(manifest)}"
    assert host.ssh(f"stat -c '%U %a' {LINK}/{SHARD1}").stdout.strip() == "root 644"
    assert start_check(host) == (0, "")

    hub.requests.clear()
    again = converge(host, tmp_path, hf_vars(hub, manifest, REV1))
    assert again.rc == 0, again.stdout[-4000:]
    assert again.stats[host.name]["changed"] == 0
    assert hub.requests == []  # the record matched: no download, not even a HEAD
    checked = converge(host, tmp_path, hf_vars(hub, manifest, REV1), check=True)
    assert checked.rc == 0, checked.stdout[-4000:]
    assert checked.stats[host.name]["changed"] == 0


def test_a_tampered_shard_is_refused_naming_it_and_the_installed_one_is_restored(
    host: TestHost, tmp_path: Path
) -> None:
    v1 = make_model(tmp_path / "v1")
    v1_manifest = manifest_of(v1)
    first = converge(host, tmp_path, folder_vars(v1, v1_manifest))
    assert first.rc == 0, first.stdout[-4000:]

    # A new version whose second shard was changed after its manifest was made.
    v2 = make_model(tmp_path / "v2")
    v2_manifest = manifest_of(v2)
    with (v2 / SHARD2).open("r+b") as shard:
        shard.seek(1000)
        shard.write(bytes([shard.read(1)[0] ^ 0xFF]))
    refused = converge(host, tmp_path, folder_vars(v2, v2_manifest))
    assert refused.rc != 0
    assert f"{SHARD2}: sha256 " in said(refused)
    assert refused.stats[host.name]["changed"] == 0  # refused on the controller
    assert host.ssh(f"readlink {LINK}").stdout.strip().endswith(version_of(v1_manifest))
    assert host.ssh(f"ls -A {DEST}/.{NAME}.versions").stdout.split() == [
        version_of(v1_manifest),
        f"{version_of(v1_manifest)}.verified",
    ]
    assert installed_sha256(host) == expected_sha256(v1)

    # The installed copy damaged in place: the start check refuses it, naming the shard;
    # the next converge finds it by its stat and puts a verified copy back.
    host.ssh(
        f"dd if=/dev/urandom of={LINK}/{SHARD1} bs=1k seek=10 count=1 conv=notrunc status=none"
    )
    rc, stderr = start_check(host)
    assert rc == 1
    assert f"{SHARD1}: size/mtime/ctime/inode" in stderr
    assert "refusing to start" in stderr
    restored = converge(host, tmp_path, folder_vars(v1, v1_manifest))
    assert restored.rc == 0, restored.stdout[-4000:]
    assert f"the installed copy is damaged: {SHARD1}: sha256" in said(restored)
    assert installed_sha256(host) == expected_sha256(v1)
    assert start_check(host) == (0, "")


def test_an_interrupted_download_leaves_the_previous_version_in_place(
    host: TestHost, hub: Hub, tmp_path: Path
) -> None:
    v1 = make_model(tmp_path / "v1")
    v1_manifest = manifest_of(v1)
    hub.publish(v1, REV1)
    assert converge(host, tmp_path, hf_vars(hub, v1_manifest, REV1)).rc == 0
    before = host.ssh(f"readlink {LINK}; stat -c '%s %Y %i' {LINK}/*").stdout

    v2 = make_model(tmp_path / "v2")
    v2_manifest = manifest_of(v2)
    base = hub.publish(v2, REV2)
    hub.handler.cut.add(f"{base}/{SHARD2}")  # the connection drops halfway through
    cut = converge(host, tmp_path, hf_vars(hub, v2_manifest, REV2))
    assert cut.rc != 0
    assert f"{SHARD2}: " in said(cut)
    assert host.ssh(f"readlink {LINK}; stat -c '%s %Y %i' {LINK}/*").stdout == before
    assert installed_sha256(host) == expected_sha256(v1)
    assert start_check(host) == (0, "")
    versions = host.ssh(f"ls -A {DEST}/.{NAME}.versions").stdout.split()
    assert not [v for v in versions if v.endswith(".partial")]

    # A run killed outright leaves its partial directory; the next run starts it over.
    partial = f"{DEST}/.{NAME}.versions/{version_of(v2_manifest)}.partial"
    host.ssh(f"mkdir -p {partial} && head -c 100 /dev/zero > {partial}/{SHARD1}")
    hub.handler.cut.clear()
    done = converge(host, tmp_path, hf_vars(hub, v2_manifest, REV2))
    assert done.rc == 0, done.stdout[-4000:]
    assert installed_sha256(host) == expected_sha256(v2)
    versions = sorted(host.ssh(f"ls -A {DEST}/.{NAME}.versions").stdout.split())
    kept = [version_of(v1_manifest), version_of(v2_manifest)]
    assert versions == sorted([*kept, *(f"{v}.verified" for v in kept)])  # one back is kept


def test_a_manifest_with_a_wrong_size_or_hash_is_refused_before_anything_is_copied(
    host: TestHost, hub: Hub, tmp_path: Path
) -> None:
    model = make_model(tmp_path / "v1")
    manifest = manifest_of(model)
    base = hub.publish(model, REV1)
    data = json.loads(manifest.read_text())

    wrong_size = tmp_path / "wrong-size.json"
    data["files"][1]["size"] += 1  # model-00001-of-00002.safetensors
    wrong_size.write_text(json.dumps(data))
    url_vars = hf_vars(hub, wrong_size, REV1) | {
        "model_store_source": "url",
        "model_store_url": hub.url + base,
    }
    refused = converge(host, tmp_path, url_vars)
    assert refused.rc != 0
    assert f"{SHARD1}: {hub.url}{base}/{SHARD1} has 300000 bytes, the manifest says 300001" in said(
        refused
    )
    assert [m for m, _ in hub.requests if m == "GET"] == []
    assert not host.testinfra().file(f"{DEST}/.{NAME}.versions").exists

    wrong_hash = tmp_path / "wrong-hash.json"
    data["files"][1]["size"] -= 1
    data["files"][0]["sha256"] = hashlib.sha256(b"another config").hexdigest()  # config.json
    wrong_hash.write_text(json.dumps(data))
    refused = converge(host, tmp_path, folder_vars(model, wrong_hash))
    assert refused.rc != 0
    assert "config.json: sha256 " in said(refused)
    assert refused.stats[host.name]["changed"] == 0
    assert host.ssh(f"ls -A {DEST}", check=False).stdout.split() == []


def test_an_archive_on_the_controller_is_installed(host: TestHost, tmp_path: Path) -> None:
    model = make_model(tmp_path / "tiny")
    manifest = manifest_of(model)
    archive = tmp_path / "tiny.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(model, arcname="tiny")  # one top folder, as `tar czf tiny.tar.gz tiny/` makes
    extra = folder_vars(model, manifest) | {
        "model_store_source": "archive",
        "model_store_local_path": str(archive),
    }
    result = converge(host, tmp_path, extra)
    assert result.rc == 0, result.stdout[-4000:]
    assert installed_sha256(host) == expected_sha256(model)
    assert not host.testinfra().file(f"{DEST}/.{NAME}.upload").exists
