"""Remote execution through real TVM RPC servers (and a tracker) on loopback: the same
outputs as a local run, remote timings from ``dqc bench --rpc``."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from dqc.cli import main
from dqc.runtime import load


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(module: str, *args: str, ready: str) -> subprocess.Popen:
    """``python -m tvm.exec.<module>`` on loopback, once it logs ``ready``."""
    process = subprocess.Popen(
        [sys.executable, "-m", f"tvm.exec.{module}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: _stop ends its session workers too
    )
    deadline = time.monotonic() + 60
    for line in process.stdout:
        if ready in line:
            return process
        if time.monotonic() > deadline:
            break
    _stop(process)
    raise RuntimeError(f"tvm.exec.{module} did not start")


def _stop(process: subprocess.Popen) -> None:
    """Kill a process started by ``_start`` with the workers it forked for RPC sessions,
    which would otherwise outlive the tests."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture(scope="module")
def rpc_server():
    port = _free_port()
    server = _start(
        "rpc_server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--port-end",
        str(port + 1),
        ready="bind to",
    )
    yield f"127.0.0.1:{port}"
    _stop(server)


@pytest.fixture(scope="module")
def tracker_with_server():
    port = _free_port()
    tracker = _start(
        "rpc_tracker",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--port-end",
        str(port + 1),
        ready="bind to",
    )
    server_port = _free_port()
    server = _start(
        "rpc_server",
        "--host",
        "127.0.0.1",
        "--port",
        str(server_port),
        "--port-end",
        str(server_port + 1),
        "--tracker",
        f"127.0.0.1:{port}",
        "--key",
        "dqc-test",
        ready="bind to",
    )
    time.sleep(1)  # the server registers with the tracker after binding
    yield f"127.0.0.1:{port}"
    _stop(server)
    _stop(tracker)


def test_rpc_run_equals_local_run(compiled_cora, data_root, rpc_server, capsys):
    out = str(compiled_cora("gcn"))
    assert main(["run", out, "--data-root", str(data_root), "--json"]) == 0
    local = json.loads(capsys.readouterr().out)
    assert main(["run", out, "--data-root", str(data_root), "--rpc", rpc_server, "--json"]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert remote.pop("runs_on") == f"rpc {rpc_server}" and local.pop("runs_on") == "local"
    assert remote == local


@pytest.mark.parametrize("arch", ["gin", "gat"])
def test_remote_logits_are_identical(compiled_cora, cora, rpc_server, arch):
    x, edges = cora.x.numpy(), cora.edge_index.numpy()
    out = compiled_cora(arch)
    assert np.array_equal(load(out, rpc=rpc_server).predict(x, edges), load(out).predict(x, edges))


def test_a_bad_node_id_stops_the_remote_binary_with_a_value_error(compiled_cora, cora, rpc_server):
    """The remote graph preparation rejects the id; the error crosses RPC and is named."""
    model = load(compiled_cora("gcn"), rpc=rpc_server)
    edges = cora.edge_index.numpy().copy()
    edges[0, 5] = cora.num_nodes
    with pytest.raises(ValueError, match=f"refers to node {cora.num_nodes}"):
        model.predict(cora.x.numpy(), edges)


def test_tracker_hands_out_the_server(compiled_cora, cora, tracker_with_server):
    x, edges = cora.x.numpy(), cora.edge_index.numpy()
    model = load(compiled_cora("gcn"), tracker=tracker_with_server, key="dqc-test")
    assert np.array_equal(model.predict(x, edges), load(compiled_cora("gcn")).predict(x, edges))


def test_bench_reports_remote_timings(trained_cora, data_root, rpc_server, capsys):
    args = [
        "bench",
        str(trained_cora("gcn")),
        "--workload",
        "cora",
        "--repeats",
        "3",
        "--no-torch-compile",
        "--data-root",
        str(data_root),
        "--rpc",
        rpc_server,
        "--json",
    ]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dqc_runs_on"] == f"rpc {rpc_server}"
    assert result["dqc_int8_ms"] > 0 and result["dqc_fp32_ms"] > 0 and result["dqc_int4_ms"] > 0
    assert "speedup_vs_pyg" not in result  # PyG ran here, dqc there: no cross-machine ratio


def test_unreachable_server_is_a_clear_error(compiled_cora, data_root, capsys):
    out = str(compiled_cora("gcn"))
    assert main(["run", out, "--data-root", str(data_root), "--rpc", "127.0.0.1:9"]) == 2
    assert "cannot reach the TVM RPC server at 127.0.0.1:9" in capsys.readouterr().err
    assert main(["run", out, "--data-root", str(data_root), "--rpc", "nowhere"]) == 2
    assert "is not HOST:PORT" in capsys.readouterr().err
