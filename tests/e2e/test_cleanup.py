"""gpuctl cleanup against the local cluster and the SSH rig: label -> taint ->
deploy (nodes and runtimeclass) -> cleanup leaves the nodes' containerd
configuration byte for byte as before, the labels and taints as before (a
person's label and taint survive), and a second cleanup finds nothing to do;
--dry-run changes nothing."""
import json
import os
import subprocess

import pytest

RECORD = ["gpuctl.io/added-labels", "gpuctl.io/overwritten-labels", "gpuctl.io/added-taints"]
CONF = "/etc/containerd/config.toml"
DROPIN = "/etc/containerd/conf.d/99-gpuctl-nvidia.toml"


def gpuctl(r, *args, check=None):
    """gpuctl label/taint (no --inventory) against the rig's cluster."""
    e = dict(os.environ, KUBECONFIG=r.env["KUBECONFIG"], NO_COLOR="1", HOME=r.tmp)
    p = subprocess.run([r.bin, *args], capture_output=True, text=True, env=e, timeout=120)
    if check is not None:
        assert p.returncode == check, f"gpuctl {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def annotations(k8s, node):
    return k8s.node(node)["metadata"].get("annotations", {})


def runtimeclass(k8s):
    return k8s.kubectl("get", "runtimeclass", "nvidia", "-o", "json", check=False)


def cleanup_json(r, *args, check=0):
    p = r.deploy(*args, "--timeout", "2m", "-o", "json", command="cleanup", check=check, timeout=300)
    doc = json.loads(p.stdout)
    assert doc["kind"] == "CleanupResult"
    return doc, p


@pytest.fixture
def person(k8s):
    """gpu-node-1 with a label and a taint a person set, and no gpuctl record."""
    node = "gpu-node-1"
    k8s.kubectl("annotate", "node", node, *[k + "-" for k in RECORD], "gpuctl.io/mps-")
    k8s.kubectl("label", "node", node, "team=ml", "--overwrite")
    k8s.kubectl("taint", "node", node, "team=ml:PreferNoSchedule", "--overwrite")
    yield node
    k8s.kubectl("annotate", "node", node, *[k + "-" for k in RECORD], "gpuctl.io/mps-")


def test_cleanup_undoes_label_taint_and_deploy(r, k8s, person):
    node = person
    r.reset(node)
    conf_before = r.exec(node, "cat", CONF).stdout
    labels_before, taints_before = k8s.labels(node), k8s.taints(node)
    # what gpuctl adds; "team" is the person's (overwritten: its old value is recorded)
    gpuctl(r, "label", node, check=0)
    gpuctl(r, "label", node, "tier=gpu", "team=gpuctl", "--overwrite", check=0)
    gpuctl(r, "taint", node, check=0)
    ann = annotations(k8s, node)
    added = set(json.loads(ann["gpuctl.io/added-labels"]))
    assert {"accelerator", "tier"} <= added <= {"accelerator", "gpu-type", "tier"}, ann
    assert json.loads(ann["gpuctl.io/overwritten-labels"]) == {"team": "ml"}, ann
    assert json.loads(ann["gpuctl.io/added-taints"]) == ["nvidia.com/gpu:NoSchedule"], ann
    r.deploy("--only", "nodes", "--only", "runtimeclass", node, check=0)
    assert r.configured(node)
    assert runtimeclass(k8s).returncode == 0

    # --dry-run: listed, nothing changed
    sha, pid = r.sha(node), r.containerd_pid(node)
    labels_mid = k8s.labels(node)
    doc, _ = cleanup_json(r, "--dry-run", node)
    assert doc["dryRun"] == "client"
    rows = {(x["id"], x["target"]): x for x in doc["results"]}
    assert rows[("containerd", node)]["status"] == "changed", rows
    assert rows[("labels", node)]["status"] == "changed", rows
    assert any(x["id"] == "object" and x.get("kind") == "RuntimeClass" for x in doc["results"]), doc
    assert r.sha(node) == sha and r.containerd_pid(node) == pid
    assert k8s.labels(node) == labels_mid and runtimeclass(k8s).returncode == 0

    # the cleanup
    doc, _ = cleanup_json(r, node)
    rows = {(x["id"], x["target"]): x for x in doc["results"]}
    c = rows[("containerd", node)]
    assert c["status"] == "changed" and c["containerd"]["method"] == "drop-in", c
    assert any("left gpuctl's backups in place" in s for s in c["containerd"]["steps"]), c
    assert r.exec(node, "cat", CONF).stdout == conf_before, "config.toml is not byte for byte as before"
    assert r.exec(node, "test", "-e", DROPIN, check=False).returncode != 0
    assert not r.configured(node)
    assert runtimeclass(k8s).returncode != 0, "the RuntimeClass gpuctl created is still there"
    labels = k8s.labels(node)
    assert labels == labels_before, (labels, labels_before)
    assert labels["team"] == "ml", "the person's label has its value back"
    assert k8s.taints(node) == taints_before
    assert not set(RECORD) & set(annotations(k8s, node)), "the record is gone"

    # the second run: nothing to do
    doc, p = cleanup_json(r, node)
    assert all(x["status"] in ("unchanged", "skipped") for x in doc["results"]), doc["results"]
    p = r.deploy(node, command="cleanup", check=0)
    assert "nothing to do" in p.stderr


@pytest.mark.parametrize("node,path,method", [
    ("ctk-gpu-node", CONF, "nvidia-ctk"),
    ("ctk-containerd2-gpu-node", CONF, "nvidia-ctk"),
    ("containerd2-gpu-node", CONF, "drop-in"),
    ("k3s-gpu-node", "/var/lib/rancher/k3s/agent/etc/containerd/config.toml.tmpl", "k3s-template"),
])
def test_cleanup_restores_nvidia_ctk_and_k3s_nodes(r, node, path, method):
    r.reset(node)
    before = r.exec(node, "cat", path, check=False)
    r.deploy("--only", "nodes", node, check=0)
    assert r.configured(node)
    doc, _ = cleanup_json(r, "--only", "nodes", node)
    c = next(x for x in doc["results"] if x["id"] == "containerd")
    assert c["status"] == "changed" and c["containerd"]["method"] == method, c
    after = r.exec(node, "cat", path, check=False)
    assert (after.returncode, after.stdout) == (before.returncode, before.stdout), f"{path} is not as before"
    doc, _ = cleanup_json(r, "--only", "nodes", node)
    c = next(x for x in doc["results"] if x["id"] == "containerd")
    assert c["status"] == "unchanged", c


def test_cleanup_refuses_a_config_a_person_changed_since(r):
    node = "ctk-gpu-node"
    r.reset(node)
    r.deploy("--only", "nodes", node, check=0)
    r.exec(node, "sh", "-c", f"printf '\\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"x.io\"]\\n"
                             f"  endpoint = [\"https://m.x.io\"]\\n' >> {CONF}")
    changed = r.sha(node)
    doc, p = cleanup_json(r, "--only", "nodes", node, check=1)
    c = next(x for x in doc["results"] if x["id"] == "containerd")
    assert c["status"] == "failed" and "changed since gpuctl wrote it" in c["error"]["message"], c
    assert r.sha(node) == changed, "a file a person changed was touched"
    doc, _ = cleanup_json(r, "--only", "nodes", "--force", "nodes", node)
    assert next(x for x in doc["results"] if x["id"] == "containerd")["status"] == "changed"
