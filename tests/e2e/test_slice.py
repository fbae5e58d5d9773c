"""gpuctl slice against the local control plane's kwok GPU nodes.

The device plugin is deployed by gpuctl deploy (--skip nodes); kwok marks its
pods Running, but there is no real plugin and no GFD on kwok nodes.  So that
slice's wait has something to see, a stand-in here plays their part while
gpuctl runs (PluginStandIn): it reads each GPU node's nvidia.com/device-plugin.config
label, the ConfigMap key it names (else the default key `any`), and patches
the node as the plugin and GFD would: status capacity/allocatable nvidia.com/gpu
(or nvidia.com/gpu.shared) = physical GPUs x replicas, and the labels
nvidia.com/gpu.replicas and nvidia.com/gpu.sharing-strategy.  THIS IS A
SIMULATION of the plugin's answer, not the plugin; the real-kubelet rig will
test the real one.

The kwok nodes have 1 (gpu-node-1, with the label nvidia.com/gpu.count=1),
4 (gpu-node-2) and 8 (gpu-node-3) GPUs; the last two have no gpu.count label,
so gpuctl must derive their physical GPUs from the capacity and replicas before.

The tests own those three nodes only.  Other GPU nodes the cluster may have
(the rig's kubelet-gpu-node-*, left by test_kubelet.py or tests/demo, with or
without a config label of their own, with or without the nvidia runtime) are
set aside for the test's duration (the `foreign` fixture): pinned to a
configuration of their own, so gpuctl slice without node names leaves them as
they are (skipped), and given a NoExecute taint the plugin does not tolerate,
so the test's DaemonSet neither runs nor is waited for there.  The tests judge
only their own nodes' rows; whatever order the test files run in.
"""
import json
import subprocess
import threading
import time

import pytest
import yaml

NS = "nvidia-device-plugin"
CM = "nvidia-device-plugin-configs"
GPU_NODES = ["gpu-node-1", "gpu-node-2", "gpu-node-3"]
PHYSICAL = {"gpu-node-1": 1, "gpu-node-2": 4, "gpu-node-3": 8}
SLICE_LABELS = ["nvidia.com/device-plugin.config", "nvidia.com/gpu.replicas", "nvidia.com/gpu.sharing-strategy",
                "nvidia.com/mig.strategy", "nvidia.com/mig.config", "nvidia.com/mig.config.state",
                "nvidia.com/gpu.compute.major", "gpuctl.io/compute-mode", "pool"]
# a config key no test writes: a foreign GPU node labelled with it has its own configuration
FOREIGN_KEY = "e2e-not-this-test"
# keeps the test's plugin DaemonSet off the GPU nodes that are not the test's
FOREIGN_TAINT = {"key": "gpuctl-e2e/not-this-test", "value": "slice", "effect": "NoExecute"}
CONFIG_LABEL = "nvidia.com/device-plugin.config"
CLUSTER_OBJECTS = [("clusterrole", "nvidia-device-plugin-role"),
                   ("clusterrolebinding", "nvidia-device-plugin-role-binding")]


def _set_capacity(k, node, resources):
    """Patch the node's status as the kubelet would after the plugin registers."""
    patch = {"status": {"capacity": resources, "allocatable": resources}}
    k.kubectl("patch", "node", node, "--subresource=status", "--type=merge", "-p", json.dumps(patch))


def _restore(k):
    k.kubectl("label", "nodes", *GPU_NODES, *[l + "-" for l in SLICE_LABELS], check=False)
    for n, phys in PHYSICAL.items():
        _set_capacity(k, n, {"nvidia.com/gpu": str(phys), "nvidia.com/gpu.shared": None})


def _cleanup(k):
    k.kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=true", "--timeout=60s", check=False)
    for kind, name in CLUSTER_OBJECTS:
        k.kubectl("delete", kind, name, "--ignore-not-found", check=False)


def _is_gpu_node(node):
    """gpuctl's GPU node rule (src/kube/nodes.c): nvidia.com/gpu* capacity or an NVIDIA label."""
    labels = node["metadata"].get("labels", {})
    cap = node.get("status", {}).get("capacity", {})
    return (any(k.startswith("nvidia.com/gpu") or k.startswith("nvidia.com/mig-") for k in cap)
            or labels.get("feature.node.kubernetes.io/pci-10de.present") == "true"
            or labels.get("nvidia.com/gpu.present") == "true")


@pytest.fixture
def foreign(k8s):
    """The GPU nodes that are not this test's, set aside while the test runs: each
    pinned to a configuration of its own (a label it had is kept; one it lacked is
    added, then removed again) and tainted so the test's plugin stays off it (the
    taint removed again).  Yields their labels as they are during the test."""
    nodes = json.loads(k8s.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    others = [n for n in nodes if n["metadata"]["name"] not in GPU_NODES and _is_gpu_node(n)]
    names = sorted(n["metadata"]["name"] for n in others)
    pinned = [n["metadata"]["name"] for n in others if CONFIG_LABEL not in n["metadata"].get("labels", {})]
    if pinned:
        k8s.kubectl("label", "nodes", *pinned, f"{CONFIG_LABEL}={FOREIGN_KEY}")
    taint = "{key}={value}:{effect}".format(**FOREIGN_TAINT)
    if names:
        k8s.kubectl("taint", "nodes", *names, taint, "--overwrite")
    labels = {n: k8s.labels(n) for n in names}
    yield labels
    if names:
        k8s.kubectl("taint", "nodes", *names, taint + "-", check=False)
    if pinned:
        k8s.kubectl("label", "nodes", *pinned, CONFIG_LABEL + "-", check=False)


def own_results(doc, foreign):
    """The results on this test's nodes; the others must have been left as they are."""
    rows = nodes_of(doc)
    for n in foreign:
        assert rows[n]["result"] == "skipped", rows[n]
    return {r["result"] for name, r in rows.items() if name not in foreign}


def assert_foreign_unchanged(k, foreign):
    for n, labels in foreign.items():
        assert k.labels(n) == labels, f"{n}, not this test's node, was changed"


@pytest.fixture
def sk(k8s, foreign):
    _cleanup(k8s)
    _restore(k8s)
    k8s.kubectl("label", "nodes", *GPU_NODES, "accelerator=nvidia", "--overwrite")
    k8s.gpuctl("deploy", "--skip", "nodes", "--timeout", "2m", check=0, timeout=180)
    k8s.foreign = foreign
    yield k8s
    _cleanup(k8s)
    _restore(k8s)
    assert_foreign_unchanged(k8s, foreign)


class PluginStandIn:
    """SIMULATES the device plugin + GFD on the kwok nodes (see the module's docstring)."""

    def __init__(self, k):
        self.k = k
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def configs(self):
        p = self.k.kubectl("get", "configmap", "-n", NS, CM, "-o", "json", check=False)
        return json.loads(p.stdout).get("data", {}) if p.returncode == 0 else {}

    def answer(self, node, data):
        labels = self.k.labels(node)
        key = labels.get("nvidia.com/device-plugin.config", "any")
        cfg = yaml.safe_load(data.get(key, "")) or {}
        sharing = cfg.get("sharing", {})
        strategy, rr = "none", {}
        if "mps" in sharing:
            strategy, rr = "mps", sharing["mps"]
        elif "timeSlicing" in sharing:
            strategy, rr = "time-slicing", sharing["timeSlicing"]
        replicas = rr["resources"][0]["replicas"] if rr else 1
        name = "nvidia.com/gpu.shared" if rr.get("renameByDefault") else "nvidia.com/gpu"
        count = str(PHYSICAL[node] * replicas)
        other = "nvidia.com/gpu" if name.endswith(".shared") else "nvidia.com/gpu.shared"
        cap = self.k.node(node)["status"]["capacity"]
        if cap.get(name) != count or other in cap:
            _set_capacity(self.k, node, {name: count, other: None})
        want = {"nvidia.com/gpu.replicas": str(replicas), "nvidia.com/gpu.sharing-strategy": strategy}
        if any(labels.get(a) != b for a, b in want.items()):
            self.k.kubectl("label", "node", node, "--overwrite", *[f"{a}={b}" for a, b in want.items()], check=False)

    def run(self):
        while not self.stop.is_set():
            data = self.configs()
            for n in GPU_NODES:
                try:
                    self.answer(n, data)
                except (KeyError, ValueError, yaml.YAMLError, AssertionError):
                    pass
            time.sleep(0.3)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=10)


def slice_json(k, *args, check=0, timeout=120):
    p = k.gpuctl("slice", *args, "--timeout", "60s", "-o", "json", check=check, timeout=timeout)
    return json.loads(p.stdout) if p.stdout.strip() else None, p


def nodes_of(doc):
    return {n["name"]: n for n in doc["nodes"]}


def capacity(k, node, res="nvidia.com/gpu"):
    return k.node(node)["status"]["capacity"].get(res)


def snapshot(k):
    """resourceVersions of the nodes and the ConfigMap: what 'nothing changed' compares."""
    out = {n: k.rv(n) for n in GPU_NODES}
    out["cm"] = json.loads(k.kubectl("get", "configmap", "-n", NS, CM, "-o", "json").stdout)["metadata"]["resourceVersion"]
    return out


def test_default_config_4_8_2_none_and_second_run_unchanged(sk):
    with PluginStandIn(sk):
        for replicas, strategy in ((4, "time-slicing"), (8, "time-slicing"), (2, "time-slicing"), (None, "none")):
            args = ["none"] if replicas is None else ["--replicas", str(replicas)]
            doc, p = slice_json(sk, *args)
            r = replicas or 1
            assert doc["kind"] == "SliceResult" and doc["config"]["key"] == "any", doc
            assert doc["config"]["result"] == "configured", doc["config"]
            for n in GPU_NODES:
                item = nodes_of(doc)[n]
                assert item["result"] == "changed", item
                assert item["after"] == PHYSICAL[n] * r, item
                assert item["strategy"] == strategy and item["replicas"] == r, item
                assert capacity(sk, n) == str(PHYSICAL[n] * r)
                assert sk.labels(n)["nvidia.com/gpu.sharing-strategy"] == strategy
                assert "nvidia.com/device-plugin.config" not in sk.labels(n), "the default needs no label"
            if strategy == "time-slicing":
                assert "no memory or fault isolation" in p.stderr
            data = json.loads(sk.kubectl("get", "configmap", "-n", NS, CM, "-o", "json").stdout)["data"]
            if replicas:
                assert f"replicas: {replicas}" in data["any"]
            else:
                assert data["any"] == "version: v1\nflags:\n  migStrategy: none\n"
        # the same again: nothing written, every node unchanged
        before = snapshot(sk)
        doc, _ = slice_json(sk, "none")
        assert doc["config"]["result"] == "unchanged"
        assert own_results(doc, sk.foreign) == {"unchanged"}, doc["nodes"]
        assert snapshot(sk)["cm"] == before["cm"]


def test_per_node_configs_on_two_groups(sk):
    sk.kubectl("label", "nodes", "gpu-node-1", "gpu-node-2", "pool=a", "--overwrite")
    sk.kubectl("label", "nodes", "gpu-node-3", "pool=b", "--overwrite")
    sk.kubectl("label", "nodes", "gpu-node-3", "nvidia.com/gpu.compute.major=9", "--overwrite")
    with PluginStandIn(sk):
        doc, _ = slice_json(sk, "--profile", "high-density", "-l", "pool=a")
        assert doc["config"]["key"] == "ts-8"
        assert set(nodes_of(doc)) == {"gpu-node-1", "gpu-node-2"}
        doc, _ = slice_json(sk, "mps", "--replicas", "2", "-l", "pool=b")
        assert doc["config"]["key"] == "mps-2"
        assert nodes_of(doc)["gpu-node-3"]["strategy"] == "mps"
        assert sk.labels("gpu-node-1")["nvidia.com/device-plugin.config"] == "ts-8"
        assert sk.labels("gpu-node-3")["nvidia.com/device-plugin.config"] == "mps-2"
        # the plugin's MPS control daemon (deployed with the plugin) runs only where
        # GFD's nvidia.com/mps.capable is "true": slice sets it, as GFD would
        assert sk.labels("gpu-node-3")["nvidia.com/mps.capable"] == "true"
        assert "nvidia.com/mps.capable" not in sk.labels("gpu-node-1"), "time-slicing nodes get no MPS label"
        deadline = time.time() + 60
        while True:
            mps = json.loads(sk.kubectl("get", "pods", "-n", NS, "-l",
                                        "app.kubernetes.io/name=nvidia-device-plugin-mps-control-daemon",
                                        "-o", "json").stdout)["items"]
            if [p["spec"].get("nodeName") for p in mps] == ["gpu-node-3"]:
                break
            assert time.time() < deadline, f"the MPS control daemon is not on gpu-node-3 alone: {mps}"
            time.sleep(0.5)
        assert capacity(sk, "gpu-node-2") == "32" and capacity(sk, "gpu-node-3") == "16"
        data = json.loads(sk.kubectl("get", "configmap", "-n", NS, CM, "-o", "json").stdout)["data"]
        assert {"any", "ts-8", "mps-2"} <= set(data), "earlier keys are kept"
        # the default changes only the nodes without a configuration of their own: here none
        doc, _ = slice_json(sk, "--replicas", "3")
        assert own_results(doc, sk.foreign) == {"skipped"}, doc["nodes"]
        assert capacity(sk, "gpu-node-2") == "32"
        # renamed resource on one node by name
        doc, _ = slice_json(sk, "--replicas", "2", "--rename", "gpu-node-1")
        assert doc["config"]["key"] == "ts-2-rename"
        assert nodes_of(doc)["gpu-node-1"]["resource"] == "nvidia.com/gpu.shared"
        assert capacity(sk, "gpu-node-1", "nvidia.com/gpu.shared") == "2"
        # none is a real key, not the label's removal
        doc, _ = slice_json(sk, "none", "gpu-node-3")
        assert sk.labels("gpu-node-3")["nvidia.com/device-plugin.config"] == "none"
        assert sk.labels("gpu-node-3")["nvidia.com/mps.capable"] == "false", "off MPS: the daemon leaves"
        assert capacity(sk, "gpu-node-3") == "8"


@pytest.mark.parametrize("args,node_labels,message", [
    (["mps", "--replicas", "2", "gpu-node-1"], {"nvidia.com/mig.strategy": "single"}, "MPS with MIG enabled"),
    (["mps", "--replicas", "2", "gpu-node-1"], {"nvidia.com/gpu.compute.major": "6"}, "Volta"),
    (["--replicas", "4", "gpu-node-1"], {"gpuctl.io/compute-mode": "Exclusive_Process"}, "EXCLUSIVE_PROCESS"),
    (["mig", "gpu-node-1"], {"nvidia.com/mig.capable": "false"}, "cannot be partitioned"),
])
def test_rejected_node_changes_nothing(sk, args, node_labels, message):
    sk.kubectl("label", "node", "gpu-node-1", "--overwrite", *[f"{a}={b}" for a, b in node_labels.items()])
    before = snapshot(sk)
    doc, p = slice_json(sk, *args, check=1)
    assert message in p.stderr, p.stderr
    assert nodes_of(doc)["gpu-node-1"]["result"] == "failed"
    assert snapshot(sk) == before
    sk.kubectl("label", "node", "gpu-node-1", *[a + "-" for a in node_labels], check=False)
    sk.kubectl("label", "node", "gpu-node-1", "nvidia.com/mig.capable-", check=False)


@pytest.mark.parametrize("args,message", [
    (["--replicas", "1"], "needs 2 or more"),
    (["mps", "--replicas", "49"], "at most 48"),
    (["--profile", "nope"], "no such profile"),
    (["none", "--replicas", "4"], "shares no GPU"),
    (["mps", "--mig-strategy", "mixed", "--replicas", "2"], "mixed"),
    (["--replicas", "4", "--profile", "any"], "give one of them"),
])
def test_rejected_config_changes_nothing(sk, args, message):
    before = snapshot(sk)
    p = sk.gpuctl("slice", *args, check=2)
    assert message in p.stderr, p.stderr
    assert snapshot(sk) == before


def test_profiles_from_the_config_file(sk, tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("apiVersion: gpuctl.io/v1alpha1\nkind: Config\nslice:\n  profiles:\n    inference: 6\n")
    with PluginStandIn(sk):
        doc, _ = slice_json(sk, "--config", str(cfg), "--profile", "inference", "gpu-node-1")
    assert doc["config"]["key"] == "ts-6"
    assert nodes_of(doc)["gpu-node-1"]["after"] == 6


def test_dry_runs_change_nothing(sk):
    before = snapshot(sk)
    for mode in ("client", "server"):
        doc, _ = slice_json(sk, "--replicas", "4", f"--dry-run={mode}")
        assert doc["dryRun"] == mode
        assert own_results(doc, sk.foreign) == {"changed"}, doc["nodes"]
        assert nodes_of(doc)["gpu-node-2"]["after"] == 16, "the expected capacity"
        doc, _ = slice_json(sk, "--replicas", "4", "gpu-node-2", f"--dry-run={mode}")
        assert doc["config"]["key"] == "ts-4"
    assert snapshot(sk) == before


def test_wait_times_out_without_the_plugin(sk):
    # no stand-in: nothing ever answers, so the wait runs out and says why
    p = sk.gpuctl("slice", "--replicas", "4", "gpu-node-1", "--timeout", "3s", check=1)
    assert "not as asked after 3 s" in p.stderr and "nvidia.com/gpu 1, want 4" in p.stderr, p.stderr
    # --no-wait returns at once with the change made
    p = sk.gpuctl("slice", "--replicas", "2", "gpu-node-2", "--no-wait", check=0)
    assert sk.labels("gpu-node-2")["nvidia.com/device-plugin.config"] == "ts-2"


def test_without_the_plugin_deployed(k8s):
    _cleanup(k8s)
    p = k8s.gpuctl("slice", "--replicas", "4", check=1)
    assert "gpuctl deploy" in p.stderr
