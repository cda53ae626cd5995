"""The `coffre ring` commands, run in-process through a parser built here."""

from __future__ import annotations

import argparse
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ring import cli, ringfile

SCRIPT_FORMS_DEVICES = [(i, f"127.0.0.1:{7000 + i}", f"r0/z{i % 3}/n{i}/d0") for i in range(6)]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="coffre")
    cli.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert isinstance(doc, dict)
    return doc


@pytest.fixture
def ring_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "data-6.ring"
    run_json(capsys, "ring", "create", str(path), "--part-power", "6", "--width", "6",
             "--min-part-hours", "1", "--seed", "3")
    for dev_id, addr, domain in SCRIPT_FORMS_DEVICES:
        run_json(capsys, "ring", "add", str(path), "--id", str(dev_id), "--addr", addr,
                 "--domain", domain, "--weight", "1")
    run_json(capsys, "ring", "rebalance", str(path), "--now", "1000")
    return path


def test_show_json_has_devices_and_assignment(ring_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_json(capsys, "ring", "show", str(ring_path))
    devices = doc["devices"]
    assert isinstance(devices, list) and len(devices) == 6
    assert {"id", "weight", "domain"} <= set(devices[0])
    assignment = doc["assignment"]
    assert isinstance(assignment, list) and len(assignment) == 64
    assert all(sorted(slots) == list(range(6)) for slots in assignment)
    assert doc["version"] == 1


def test_add_then_dry_run_then_rebalance(ring_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "ring", "add", str(ring_path), "--id", "6", "--addr", "127.0.0.1:7006",
             "--domain", "r0/z0/n6/d0", "--weight", "1")
    before = ring_path.read_bytes()
    plan = run_json(capsys, "ring", "rebalance", str(ring_path), "--dry-run", "--now", "9000")
    assert ring_path.read_bytes() == before
    assert plan["dry_run"] is True and plan["changed"] is True
    assert 0 < plan["slots_moved"] <= 64 * 6 / 7 * 1.05 + 6
    done = run_json(capsys, "ring", "rebalance", str(ring_path), "--now", "9000")
    assert done["slots_moved"] == plan["slots_moved"] and done["valid"] is True
    assert ringfile.load(ring_path).version == 2
    zones = {z["name"]: z for z in done["zones"]}
    assert zones["r0/z0"]["slots_in"] >= 1


def test_set_weight_remove_fail_and_validate(ring_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "ring", "set-weight", str(ring_path), "--id", "2", "--weight", "2.5")
    run_json(capsys, "ring", "add", str(ring_path), "--id", "7", "--addr", "127.0.0.1:7007",
             "--domain", "r0/z1/n7/d0", "--weight", "1")
    run_json(capsys, "ring", "add", str(ring_path), "--id", "8", "--addr", "127.0.0.1:7008",
             "--domain", "r0/z2/n8/d0", "--weight", "1")
    run_json(capsys, "ring", "remove", str(ring_path), "--id", "0")
    run_json(capsys, "ring", "fail", str(ring_path), "--id", "1")
    run_json(capsys, "ring", "rebalance", str(ring_path), "--now", "5000")
    ring = ringfile.load(ring_path)
    assert {d.id for d in ring.devices} == {2, 3, 4, 5, 7, 8}
    assert {d.id for d in ring.retired} <= {0}
    code, out, _ = run(capsys, "ring", "validate", str(ring_path), "--json")
    assert code == 0 and json.loads(out)["valid"] is True


@pytest.mark.parametrize(
    "argv",
    [
        ["add", "--id", "0", "--addr", "127.0.0.1:9", "--domain", "r/z/n/d", "--weight", "1"],
        ["add", "--id", "9", "--addr", "127.0.0.1:9", "--domain", "r/z/n/d", "--weight", "0"],
        ["add", "--id", "9", "--addr", "127.0.0.1:9", "--domain", "r/z/n/d", "--weight", "-1"],
        ["add", "--id", "9", "--addr", "127.0.0.1:9", "--domain", "r/z/n/d", "--weight", "x"],
        ["add", "--id", "9", "--addr", "nohost", "--domain", "r/z/n/d", "--weight", "1"],
        ["add", "--id", "9", "--addr", "127.0.0.1:9", "--domain", "r/z", "--weight", "1"],
        ["remove", "--id", "42"],
        ["fail", "--id", "42"],
        ["set-weight", "--id", "42", "--weight", "1"],
        ["set-weight", "--id", "1", "--weight", "0"],
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    ring_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    before = ring_path.read_bytes()
    code, out, err = run(capsys, "ring", argv[0], str(ring_path), *argv[1:])
    assert code != 0 and out == ""
    assert err.startswith("coffre ring: error: ") and err.count("\n") == 1
    assert ring_path.read_bytes() == before


@pytest.mark.parametrize("power", ["-1", "21", "x"])
def test_create_rejects_part_power_out_of_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], power: str
) -> None:
    path = tmp_path / "r.ring"
    code, _, err = run(capsys, "ring", "create", str(path), "--part-power", power, "--width", "6")
    assert code != 0 and err.count("\n") == 1 and not path.exists()


def test_create_does_not_overwrite(ring_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = ring_path.read_bytes()
    code, _, err = run(capsys, "ring", "create", str(ring_path), "--part-power", "4",
                       "--width", "3")
    assert code != 0 and "exists" in err and ring_path.read_bytes() == before


@pytest.mark.parametrize("content", [b"", b"not a ring at all", b"COFFRING" + bytes(40)])
def test_not_a_ring_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                content: bytes) -> None:
    path = tmp_path / "bad.ring"
    path.write_bytes(content)
    for command in ("show", "validate", "rebalance"):
        code, _, err = run(capsys, "ring", command, str(path))
        assert code != 0 and err.count("\n") == 1, err
    assert path.read_bytes() == content


def test_bad_checksum_is_one_line(ring_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = bytearray(ring_path.read_bytes())
    data[40] ^= 1
    ring_path.write_bytes(bytes(data))
    code, _, err = run(capsys, "ring", "show", str(ring_path))
    assert code != 0 and "checksum" in err and err.count("\n") == 1


def test_diff_reports_moves(ring_path: Path, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    old = tmp_path / "old.ring"
    old.write_bytes(ring_path.read_bytes())
    run_json(capsys, "ring", "remove", str(ring_path), "--id", "5")
    run_json(capsys, "ring", "add", str(ring_path), "--id", "9", "--addr", "127.0.0.1:7009",
             "--domain", "r0/z2/n9/d0", "--weight", "1")
    run_json(capsys, "ring", "rebalance", str(ring_path), "--now", "4000")
    sizes = tmp_path / "sizes.json"
    sizes.write_text(json.dumps({str(p): 100 for p in range(64)}))
    doc = run_json(capsys, "ring", "diff", str(old), str(ring_path), "--partition-bytes",
                   str(sizes))
    assert doc["slots_moved"] == 64
    assert doc["bytes_moved"] == 6400
    flows = {f["name"]: f for f in doc["devices"]}
    assert flows["5"]["slots_out"] == 64 and flows["9"]["slots_in"] == 64


class _Catcher(http.server.BaseHTTPRequestHandler):
    got: ClassVar[dict[str, bytes]] = {}

    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        self.got[self.path] = self.rfile.read(length)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def node() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Catcher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_publish_puts_the_file_to_every_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], node: str
) -> None:
    path = tmp_path / "meta.ring"
    run_json(capsys, "ring", "create", str(path), "--part-power", "4", "--width", "3")
    for i in range(3):
        run_json(capsys, "ring", "add", str(path), "--id", str(i), "--addr", node,
                 "--domain", f"r/z{i}/n/d", "--weight", "1")
    run_json(capsys, "ring", "add", str(path), "--id", "3", "--addr", "127.0.0.1:1",
             "--domain", "r/z0/n1/d", "--weight", "1")
    run_json(capsys, "ring", "rebalance", str(path))
    code, out, _ = run(capsys, "ring", "publish", str(path), "--json", "--timeout", "2",
                       "--to", "127.0.0.1:2")
    doc = json.loads(out)
    assert code == 1  # 127.0.0.1:1 refuses: reported, and the exit code says so
    by_addr = {n["addr"]: n for n in doc["nodes"]}
    assert by_addr[node]["ok"] is True and by_addr["127.0.0.1:1"]["ok"] is False
    assert by_addr["127.0.0.1:2"]["ok"] is False  # --to: a gateway's admin endpoint
    assert _Catcher.got["/admin/rings/meta.ring"] == path.read_bytes()
