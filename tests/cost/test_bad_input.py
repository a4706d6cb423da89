"""Bad scenarios: one clear error naming the bad value, exit 1, no report written,
and an existing report left exactly as it was."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmbox.cli import main

GOOD = """\
name: test
model: {name: Llama 3 8B}
electricity_usd_per_kwh: 0.2
options:
  - hardware: pc-i7-13700k-rtx3060
  - cloud: g5.xlarge
"""

CASES = {
    "malformed YAML": (
        "name: test\noptions: [unclosed\n",
        r"not valid YAML at line 3 column 1",
    ),
    "missing field": (
        GOOD.replace("electricity_usd_per_kwh: 0.2\n", ""),
        r"electricity_usd_per_kwh: field required",
    ),
    "negative price": (
        GOOD.replace("- cloud: g5.xlarge", "- {cloud: g5.xlarge, usd_per_hour: -1}"),
        r"options\[1\]\.usd_per_hour: input should be greater than or equal to 0 \(got -1\)",
    ),
    "negative hours": (
        GOOD + "usage: {hours_per_day: -3}\n",
        r"usage\.hours_per_day: input should be greater than 0 \(got -3\)",
    ),
    "too many hours": (
        GOOD + "usage: {hours_per_day: 25}\n",
        r"usage\.hours_per_day: input should be less than or equal to 24 \(got 25\)",
    ),
    "zero throughput": (
        GOOD.replace("- cloud: g5.xlarge", "- {cloud: g5.xlarge, tok_s: 0}"),
        r"options\[1\]\.tok_s: input should be greater than 0 \(got 0\)",
    ),
    "unknown GPU": (
        GOOD + "  - {name: box, kind: office, gpu: RTX 4091, price_usd: 900}\n",
        r"options\[2\]: unknown GPU 'RTX 4091'; did you mean 'RTX 4090'",
    ),
    "unknown instance": (
        GOOD.replace("cloud: g5.xlarge", "cloud: g5.xlarg"),
        r"options\[1\]: unknown instance type 'g5\.xlarg'; did you mean 'g5\.xlarge'",
    ),
    "unknown hardware": (
        GOOD.replace("pc-i7-13700k-rtx3060", "pc-i7-13700k"),
        r"options\[0\]: unknown hardware build 'pc-i7-13700k'; did you mean",
    ),
    "unknown model": (
        GOOD.replace("Llama 3 8B", "Llama 9 8B"),
        r"model\.name: unknown model 'Llama 9 8B'; did you mean 'Llama 3 8B'",
    ),
    "unknown quantization": (
        GOOD.replace("{name: Llama 3 8B}", "{name: Llama 3 8B, quantization: Q3_XYZ}"),
        r"model\.quantization: input should be 'Q4_0', .* \(got 'Q3_XYZ'\)",
    ),
    "unknown field": (
        GOOD + "electricity_price: 0.3\n",
        r"electricity_price: extra inputs are not permitted",
    ),
    "spot without a spot market": (
        GOOD.replace("- cloud: g5.xlarge", "- {cloud: rented-rtx-4090, spot: true}"),
        r"options\[1\]: spot: no spot price is catalogued for 'rented-rtx-4090'",
    ),
    "duplicate option": (
        GOOD + "  - cloud: g5.xlarge\n",
        r"options\[2\]: the name 'g5\.xlarge' is already used by another option",
    ),
    "spot on an office box": (
        GOOD.replace(
            "- hardware: pc-i7-13700k-rtx3060", "- {hardware: pc-i7-13700k-rtx3060, spot: true}"
        ),
        r"options\[0\]: 'spot' picks a catalog instance's spot prices",
    ),
    "office field on a cloud option": (
        GOOD.replace("- cloud: g5.xlarge", "- {cloud: g5.xlarge, price_usd: 100}"),
        r"options\[1\]: price_usd does not apply to a cloud option",
    ),
    "not a mapping": ("- just\n- a list\n", r"expected a mapping of scenario fields"),
    "unknown API": (
        GOOD + "apis: [gpt-6]\n",
        r"apis\[0\]: unknown hosted API 'gpt-6'",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_scenario_fails_cleanly_without_writing(tmp_path: Path, case: str) -> None:
    text, message = CASES[case]
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(text)
    fresh, existing = tmp_path / "new.html", tmp_path / "old.md"
    existing.write_text("the report from last week")

    for out in (fresh, existing):
        result = CliRunner().invoke(main, ["report", str(scenario), "--out", str(out)])
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output  # one message, no traceback
        assert lines[0].startswith(f"Error: {scenario}: ")
        assert re.search(message, lines[0]), lines[0]
    assert not fresh.exists()
    assert existing.read_text() == "the report from last week"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.md", "scenario.yaml"]


def test_good_scenario_passes_the_same_path(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(GOOD)
    result = CliRunner().invoke(main, ["report", str(scenario), "--format", "md"])
    assert result.exit_code == 0, result.output
    assert "| g5.xlarge | cloud | A10G |" in re.sub(r" {2,}", " ", result.output)  # padded


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # a PNG's signature: 0x89 cannot start a UTF-8 sequence
        (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            r"not a UTF-8 text file \(byte 0x89 at offset 0\)",
        ),
        # decodes as UTF-8, but NUL is no character a YAML file may hold
        (b"name: x\n\x00\x01\x02", r"not valid YAML: unacceptable character #x0000"),
    ],
    ids=["undecodable", "binary"],
)
def test_binary_scenario_file_is_named_in_one_line(
    tmp_path: Path, content: bytes, message: str
) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_bytes(content)
    result = CliRunner().invoke(main, ["report", str(scenario)])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output  # no traceback
    assert lines[0].startswith(f"Error: {scenario}: ")
    assert re.search(message, lines[0]), lines[0]


def test_missing_scenario_file_is_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["report", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "nope.yaml" in result.output and "No such file" in result.output


def test_out_into_a_missing_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "missing" / "r.md"
    result = CliRunner().invoke(main, ["report", "--out", str(out)])
    assert result.exit_code == 1
    assert "folder" in result.output and "does not exist" in result.output
