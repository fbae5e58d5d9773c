"""Streaming lists page by page gives the same results, byte for byte, as one whole list (issue 14).

On a cluster of its own with 1,000 GPU nodes (tests/cluster/up, GPUCTL_TEST_NODES=1000), every
command that lists nodes runs with the list in one response (--chunk-size 0), in pages of 500 (the
default), of 7 (a page boundary every few nodes: 143 pages) and of 999 (the last page holds two
nodes); their stdout and exit status must be the same. The node names reported are also checked
against kubectl's list, so a node dropped or reordered by every page size alike is caught too.
A device plugin DaemonSet (a pod on every node, Running through kwok) gives validate's stack checks
a list of 1,001 pods to read page by page as well.

The cluster's state folder: $GPUCTL_E2E_SCALE_CLUSTER_DIR, default $GPUCTL_CLUSTER_DIR (or
/tmp/gpuctl-cluster) with "-1000" appended. A cluster this test started is stopped afterwards; one
already running there is reused (brought to 1,000 GPU nodes) and left running, with the labels and
taints the test added removed. GPUCTL_E2E_SCALE=0 skips the test (it needs about a minute and
1 GiB of memory for the second control plane).
"""
import json
import os
import re
import tempfile
import time

import pytest

from conftest import Cluster, cluster_down, cluster_up

NODES = 1000
SIZES = ["0", None, "7", "999"]  # None: no flag, the default of 500
# nodes gpuctl taints for real before the comparison (gpuctl's records: cleanup has work to show),
# and nodes a person labelled (label reports them unchanged, or refuses to overwrite)
TAINTED = [f"gpu-node-{i}" for i in range(100, 200)]
LABELLED = [f"gpu-node-{i}" for i in range(200, 300)]
PLUGIN_NS = "gpuctl-e2e-scale-plugin"
PLUGIN = {
    "apiVersion": "apps/v1", "kind": "DaemonSet",
    "metadata": {"name": "nvidia-device-plugin", "namespace": PLUGIN_NS},
    "spec": {
        "selector": {"matchLabels": {"app": "e2e-scale-plugin"}},
        "template": {
            "metadata": {"labels": {"app": "e2e-scale-plugin"}},
            "spec": {
                "tolerations": [{"operator": "Exists"}],
                "containers": [{
                    "name": "nvidia-device-plugin-ctr", "image": "nvcr.io/nvidia/k8s-device-plugin:v0.19.3",
                    "command": ["nvidia-device-plugin"],
                    "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                    "resources": {"requests": {"cpu": "10m"}},
                    "volumeMounts": [{"name": "dp", "mountPath": "/var/lib/kubelet/device-plugins"}]}],
                "volumes": [{"name": "dp", "hostPath": {"path": "/var/lib/kubelet/device-plugins"}}]}}}}
COMMANDS = [
    ("label", "--dry-run", "-o", "json"),
    ("label", "--dry-run"),
    ("label", "--dry-run", "-o", "json", "--all", "tier=gold"),
    ("label", "--dry-run", "-o", "json", "gpu-node-999", "gpu-node-1", "gpu-node-500", "cpu-node-1"),
    ("label", "--dry-run", "-o", "json", "-l", "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3"),
    ("taint", "--dry-run", "-o", "json"),
    ("validate", "--only", "cluster", "-o", "json"),
    ("cleanup", "--only", "labels", "--dry-run", "-o", "json"),
    ("cleanup", "--only", "cluster", "--dry-run", "-o", "json"),
]


@pytest.fixture(scope="module")
def big(gpuctl_bin):
    if os.environ.get("GPUCTL_E2E_SCALE") == "0":
        pytest.skip("GPUCTL_E2E_SCALE=0: the 1,000-node comparison is off")
    state = os.environ.get("GPUCTL_E2E_SCALE_CLUSTER_DIR") or (
        os.environ.get("GPUCTL_CLUSTER_DIR", "/tmp/gpuctl-cluster").rstrip("/") + "-1000")
    reused = os.path.exists(os.path.join(state, "env"))
    env = cluster_up(GPUCTL_CLUSTER_DIR=state, GPUCTL_TEST_NODES=str(NODES))
    with tempfile.TemporaryDirectory(prefix="gpuctl-e2e-scale-") as tmp:
        c = Cluster(env, gpuctl_bin, tmp)
        try:
            c.gpuctl("taint", *TAINTED, check=0, timeout=300)
            c.kubectl("label", "nodes", "--overwrite", *LABELLED, "accelerator=nvidia", "tier=silver")
            c.kubectl("create", "namespace", PLUGIN_NS, check=False)
            c.kubectl("apply", "-f", "-", input=json.dumps(PLUGIN))
            deadline = time.monotonic() + 600
            while True:
                st = json.loads(c.kubectl("-n", PLUGIN_NS, "get", "daemonset", "nvidia-device-plugin", "-o",
                                          "json").stdout).get("status", {})
                want = st.get("desiredNumberScheduled", 0)
                if want > NODES and st.get("numberReady") == want:
                    break
                assert time.monotonic() < deadline, f"the plugin's pods are not all ready after 10 min: {st}"
                time.sleep(3)
            yield c
        finally:
            if reused:
                c.kubectl("delete", "namespace", PLUGIN_NS, "--wait=false", check=False)
                c.gpuctl("cleanup", "--only", "labels", timeout=300)
                c.kubectl("label", "nodes", *LABELLED, "accelerator-", "tier-", check=False)
            else:
                cluster_down(GPUCTL_CLUSTER_DIR=state)


def is_gpu(node):
    labels = node["metadata"].get("labels", {})
    return ("nvidia.com/gpu" in node.get("status", {}).get("capacity", {})
            or labels.get("feature.node.kubernetes.io/pci-10de.present") == "true"
            or labels.get("nvidia.com/gpu.present") == "true")


def node_lists(stderr):
    """The node list requests of a -v run."""
    return [l for l in stderr.splitlines() if re.match(r"^I GET \S*/api/v1/nodes(\?\S*)? ", l)]


def test_cluster_has_1000_gpu_nodes(big):
    nodes = json.loads(big.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert sum(map(is_gpu, nodes)) >= NODES


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a) for a in COMMANDS])
def test_same_output_whatever_the_page_size(big, args):
    runs = {}
    for size in SIZES:
        flag = ["--chunk-size", size] if size is not None else []
        p = big.gpuctl("-v", *flag, *args, timeout=300)
        assert p.returncode in (0, 1), f"gpuctl {' '.join(args)} exited {p.returncode}:\n{p.stderr[-3000:]}"
        runs[size] = p
    name = {"0": "0 (one page)", None: "500 (the default)"}
    ref = runs["0"]
    assert ref.stdout.strip(), f"gpuctl {' '.join(args)} printed nothing:\n{ref.stderr[-3000:]}"
    for size, p in runs.items():
        assert p.returncode == ref.returncode, (f"--chunk-size {name.get(size, size)}: exit {p.returncode}, "
                                                f"one page: {ref.returncode}")
        if p.stdout != ref.stdout:
            a, b = ref.stdout.splitlines(), p.stdout.splitlines()
            i = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
            pytest.fail(f"gpuctl {' '.join(args)}: --chunk-size {name.get(size, size)} differs from one page "
                        f"at line {i + 1} "
                        f"({len(b)} lines vs {len(a)}):\n  one page: {a[i] if i < len(a) else '<end>'}\n"
                        f"  paged:    {b[i] if i < len(b) else '<end>'}")
    # the page size was really used: one request without a limit, or one per page
    lists = {size: node_lists(p.stderr) for size, p in runs.items()}
    if any(lists.values()):
        assert all("limit=" not in l for l in lists["0"]), lists["0"]
        assert len(lists["7"]) >= 2 * len(lists[None]), (len(lists["7"]), len(lists[None]))
        assert all("limit=7&" in l or l.split()[2].endswith("limit=7") for l in lists["7"]), lists["7"][:3]


def test_label_reports_every_gpu_node_in_the_api_order(big):
    """The reference of the page-size comparison, computed a different way: kubectl's list."""
    nodes = json.loads(big.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    want = [n["metadata"]["name"] for n in nodes if is_gpu(n)]
    for size in ("0", "7"):
        doc = json.loads(big.gpuctl("--chunk-size", size, "label", "--dry-run", "-o", "json", check=0).stdout)
        got = [n["name"] for n in doc["nodes"]]
        assert got == want, f"--chunk-size {size}: {len(got)} nodes reported, {len(want)} GPU nodes listed"
        res = {n["name"]: n["result"] for n in doc["nodes"]}
        assert all(res[n] == "changed" for n in TAINTED), "the tainted nodes still lack the labels"
        assert {res[n] for n in LABELLED} == {"changed"}, "gpu-type is still to add on the labelled ones"
    doc = json.loads(big.gpuctl("taint", "--dry-run", "-o", "json", check=0).stdout)
    res = {n["name"]: n["result"] for n in doc["nodes"]}
    assert [n for n in want if res[n] == "unchanged"] == TAINTED
    doc = json.loads(big.gpuctl("cleanup", "--only", "labels", "--dry-run", "-o", "json").stdout)
    assert doc, "cleanup printed no document"


def test_validate_reads_every_plugin_pod(big):
    """validate's stack checks found each node's pod in the pruned, paged list of pods."""
    doc = json.loads(big.gpuctl("--chunk-size", "7", "validate", "--only", "cluster", "-o", "json").stdout)
    ok = [c["target"] for c in doc["checks"] if c["id"] == "node.device-plugin" and c["status"] == "pass"]
    bad = [c for c in doc["checks"] if c["id"] == "node.device-plugin" and c["status"] != "pass"]
    assert len(ok) == NODES, bad[:3]
