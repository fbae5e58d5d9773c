"""gpuctl deploy's cluster phases (plugin, gfd, dcgm-exporter) against the local
control plane: objects created by server-side apply on the kwok GPU nodes (kwok
marks DaemonSet pods Running, so the wait completes), a second run that writes
nothing, --render accepted by the server, --diff, --dry-run, a foreign device
plugin refused, and the GPU Operator mode against the real ClusterPolicy CRD.
The node phase (SSH) is skipped here: tests/e2e/test_deploy.py covers it."""
import json
import os
import time

import pytest

from conftest import ROOT

NS = "nvidia-device-plugin"
CRD = os.path.join(ROOT, "tests/fixtures/crds/nvidia.com_clusterpolicies.yaml")
CLUSTER_OBJECTS = [("clusterrole", "nvidia-device-plugin-role"),
                   ("clusterrolebinding", "nvidia-device-plugin-role-binding"),
                   ("clusterrole", "gpu-feature-discovery"),
                   ("clusterrolebinding", "gpu-feature-discovery")]


def _cleanup(k):
    # pods left on nodes that are gone (an earlier module's rig nodes) would hold
    # the namespaces in Terminating: remove them first
    for ns in (NS, "gpu-operator", "foreign-dp"):
        k.kubectl("delete", "pods", "-n", ns, "--all", "--force", "--grace-period=0", check=False)
    k.kubectl("delete", "namespace", NS, "gpu-operator", "foreign-dp", "--ignore-not-found", "--wait=true",
              "--timeout=120s", check=False)
    for kind, name in CLUSTER_OBJECTS:
        k.kubectl("delete", kind, name, "--ignore-not-found", check=False)
    k.kubectl("delete", "clusterpolicies.nvidia.com", "--all", "--ignore-not-found", check=False)
    k.kubectl("delete", "-f", CRD, "--ignore-not-found", check=False)


@pytest.fixture
def dk(k8s):
    _cleanup(k8s)
    # the DaemonSets select GPU nodes by label: label them as gpuctl label would
    k8s.kubectl("label", "nodes", "gpu-node-1", "gpu-node-2", "gpu-node-3", "accelerator=nvidia", "--overwrite")
    yield k8s
    _cleanup(k8s)


def deploy(k, *args, check=0, timeout=180):
    return k.gpuctl("deploy", "--skip", "nodes", *args, check=check, timeout=timeout)


def deploy_json(k, *args, check=0):
    p = deploy(k, *args, "-o", "json", check=check)
    doc = json.loads(p.stdout)
    return doc, {(o["kind"], o["name"]): o for o in doc.get("objects", [])}, p


def rvs(k):
    """What a write would change: resourceVersions, and for DaemonSets (whose
    status the controller keeps updating) the spec's generation."""
    out = {}
    for kind in ("daemonset", "configmap", "serviceaccount", "service"):
        items = json.loads(k.kubectl("get", kind, "-n", NS, "-o", "json").stdout)["items"]
        field = "generation" if kind == "daemonset" else "resourceVersion"
        out.update({(kind, i["metadata"]["name"]): i["metadata"][field] for i in items})
    for kind, name in CLUSTER_OBJECTS:
        p = k.kubectl("get", kind, name, "-o", "jsonpath={.metadata.resourceVersion}", check=False)
        if p.returncode == 0:
            out[(kind, name)] = p.stdout
    return out


def test_deploys_from_nothing_and_waits_until_ready(dk):
    doc, objs, p = deploy_json(dk, "--with", "gfd,dcgm-exporter", "--timeout", "2m")
    assert doc["kind"] == "DeployResult" and "nodes" not in doc
    for key in [("Namespace", NS), ("ServiceAccount", "nvidia-device-plugin-service-account"),
                ("ClusterRole", "nvidia-device-plugin-role"), ("ClusterRoleBinding", "nvidia-device-plugin-role-binding"),
                ("ConfigMap", "nvidia-device-plugin-configs"), ("DaemonSet", "nvidia-device-plugin"),
                ("DaemonSet", "gpu-feature-discovery"), ("DaemonSet", "dcgm-exporter"), ("Service", "dcgm-exporter")]:
        assert objs[key]["result"] == "created", (key, objs.get(key))
    for name in ("nvidia-device-plugin", "gpu-feature-discovery", "dcgm-exporter"):
        assert objs[("DaemonSet", name)]["ready"] is True
    ds = json.loads(dk.kubectl("get", "daemonset", "-n", NS, "nvidia-device-plugin", "-o", "json",
                               "--show-managed-fields").stdout)
    assert ds["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "gpuctl"
    spec = ds["spec"]["template"]["spec"]
    assert spec["runtimeClassName"] == "nvidia"
    assert [c["image"] for c in spec["containers"]] == ["nvcr.io/nvidia/k8s-device-plugin:v0.19.3"] * 2
    assert ds["status"]["desiredNumberScheduled"] >= 3, ds["status"]
    managers = {m["manager"] for m in ds["metadata"]["managedFields"]}
    assert "gpuctl" in managers
    cm = json.loads(dk.kubectl("get", "configmap", "-n", NS, "nvidia-device-plugin-configs", "-o", "json").stdout)
    assert list(cm["data"]) == ["any"]


def test_second_run_changes_nothing_and_says_so(dk):
    deploy(dk, "--with", "gfd,dcgm-exporter")
    before = rvs(dk)
    doc, objs, _ = deploy_json(dk, "--with", "gfd,dcgm-exporter")
    assert {o["result"] for o in objs.values()} == {"unchanged"}, objs
    assert rvs(dk) == before, "a second run wrote to the cluster"
    p = deploy(dk, "--with", "gfd,dcgm-exporter")
    assert "created" not in p.stdout and "changed" not in p.stdout.replace("unchanged", "")
    assert "daemonset/nvidia-device-plugin  unchanged" in p.stdout


def test_render_is_yaml_only_and_accepted_by_the_server(dk):
    p = dk.gpuctl("deploy", "--render", "--with", "gfd,dcgm-exporter", check=0)
    assert p.stdout.startswith("---\n") and p.stderr == ""
    again = dk.gpuctl("deploy", "--render", "--with", "gfd,dcgm-exporter", check=0)
    assert again.stdout == p.stdout, "--render is byte-stable"
    # the namespace must exist for a server dry run of what is in it
    dk.kubectl("create", "namespace", NS)
    a = dk.kubectl("apply", "--dry-run=server", "-f", "-", input=p.stdout)
    assert "daemonset.apps/nvidia-device-plugin created (server dry run)" in a.stdout, a.stdout
    # --render contacts nothing: an unreachable server does not matter
    p = dk.gpuctl("deploy", "--render", "--server", "https://127.0.0.1:1", check=0)
    assert "kind: DaemonSet" in p.stdout


def test_registry_rewrites_every_image(dk):
    p = dk.gpuctl("deploy", "--render", "--with", "gfd,dcgm-exporter", "--registry", "mirror.local:5000/nv", check=0)
    images = [l.split("image:", 1)[1].strip() for l in p.stdout.splitlines() if "image:" in l]
    assert images and all(i.startswith("mirror.local:5000/nv/") for i in images), images


def test_diff_after_a_change(dk):
    deploy(dk)
    dk.kubectl("patch", "daemonset", "-n", NS, "nvidia-device-plugin", "--type=json", "-p",
               json.dumps([{"op": "replace", "path": "/spec/template/spec/priorityClassName",
                            "value": "system-cluster-critical"}]))
    before = rvs(dk)
    p = deploy(dk, "--diff")
    assert "DaemonSet nvidia-device-plugin/nvidia-device-plugin: would change" in p.stdout, p.stdout
    assert "priorityClassName" in p.stdout and "system-node-critical" in p.stdout
    assert rvs(dk) == before, "--diff changed the cluster"
    doc, objs, _ = deploy_json(dk)
    assert objs[("DaemonSet", "nvidia-device-plugin")]["result"] == "configured"


def test_dry_run_creates_nothing(dk):
    for mode in ("client", "server"):
        doc, objs, _ = deploy_json(dk, "--dry-run=" + mode)
        assert doc["dryRun"] == mode
        assert objs[("DaemonSet", "nvidia-device-plugin")]["result"] == "created"
        assert dk.kubectl("get", "namespace", NS, check=False).returncode != 0, "a dry run created the namespace"


def test_foreign_device_plugin_is_refused(dk):
    dk.kubectl("create", "namespace", "foreign-dp")
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet",
          "metadata": {"name": "nvidia-device-plugin-daemonset", "namespace": "foreign-dp"},
          "spec": {"selector": {"matchLabels": {"name": "ndp"}},
                   "template": {"metadata": {"labels": {"name": "ndp"}},
                                "spec": {"containers": [{"name": "nvidia-device-plugin-ctr",
                                                         "image": "nvcr.io/nvidia/k8s-device-plugin:v0.17.2"}]}}}}
    dk.kubectl("apply", "-f", "-", input=json.dumps(ds))
    p = deploy(dk, check=1)
    assert "foreign-dp/nvidia-device-plugin-daemonset" in p.stderr and "second one" in p.stderr, p.stderr
    assert dk.kubectl("get", "namespace", NS, check=False).returncode != 0, "something was created"


def test_operator_mode_patches_the_cluster_policy(dk):
    dk.kubectl("apply", "-f", CRD)
    # (kubectl wait fails at once while the CRD has no conditions yet: poll)
    deadline = time.monotonic() + 60
    def established():
        crd = json.loads(dk.kubectl("get", "crd", "clusterpolicies.nvidia.com", "-o", "json").stdout)
        return any(c.get("type") == "Established" and c.get("status") == "True"
                   for c in crd.get("status", {}).get("conditions") or [])
    while not established():
        assert time.monotonic() < deadline, "the ClusterPolicy CRD was not established within 60 s"
        time.sleep(0.5)
    dk.kubectl("create", "namespace", "gpu-operator")
    # the real CRD's required parts (its schema rejects a ClusterPolicy without them)
    policy = {"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy", "metadata": {"name": "cluster-policy"},
              "spec": {"devicePlugin": {"enabled": True}, "daemonsets": {}, "dcgm": {}, "dcgmExporter": {},
                       "driver": {}, "gfd": {}, "nodeStatusExporter": {}, "operator": {}, "toolkit": {}}}
    for _ in range(20):  # the CRD's API may take a moment to serve
        p = dk.kubectl("apply", "-f", "-", input=json.dumps(policy), check=False)
        if p.returncode == 0:
            break
        time.sleep(0.5)
    assert p.returncode == 0, p.stderr
    doc, objs, p = deploy_json(dk)
    cp = objs[("ClusterPolicy", "cluster-policy")]
    assert cp["result"] == "configured", cp
    got = json.loads(dk.kubectl("get", "clusterpolicy", "cluster-policy", "-o", "json").stdout)
    assert got["spec"]["devicePlugin"]["config"] == {"name": "nvidia-device-plugin-configs", "default": "any"}
    assert objs[("ConfigMap", "nvidia-device-plugin-configs")]["namespace"] == "gpu-operator"
    assert ("DaemonSet", "nvidia-device-plugin") not in objs, "no plugin of gpuctl's own beside the operator's"
    assert dk.kubectl("get", "daemonset", "-n", NS, "nvidia-device-plugin", check=False).returncode != 0
    doc, objs, _ = deploy_json(dk, "--operator")
    assert objs[("ClusterPolicy", "cluster-policy")]["result"] == "unchanged"
    # what it was before is recorded, and cleanup puts it back (the config gpuctl added removed)
    ann = got["metadata"]["annotations"]["gpuctl.io/previous-device-plugin-config"]
    assert ann == "null", ann
    p = dk.gpuctl("cleanup", "--skip", "nodes", "--skip", "labels", "-o", "json", "--timeout", "2m", check=0)
    assert "ClusterPolicy" in p.stdout and "put back" in p.stdout, p.stdout
    got = json.loads(dk.kubectl("get", "clusterpolicy", "cluster-policy", "-o", "json").stdout)
    assert "config" not in got["spec"]["devicePlugin"], got["spec"]["devicePlugin"]
    assert got["spec"]["devicePlugin"]["enabled"] is True
    assert "gpuctl.io/previous-device-plugin-config" not in got["metadata"].get("annotations", {})
    assert dk.kubectl("get", "configmap", "-n", "gpu-operator", "nvidia-device-plugin-configs", check=False).returncode != 0
    p = dk.gpuctl("cleanup", "--skip", "nodes", "--skip", "labels", "-o", "json", "--timeout", "2m", check=0)
    assert "put back" not in p.stdout, "a second cleanup finds nothing to put back"


def test_missing_permissions_are_listed_in_one_error(dk):
    p = dk.gpuctl("--context", "reader", "deploy", "--skip", "nodes", check=3)
    assert "create daemonsets.apps in namespace nvidia-device-plugin" in p.stderr, p.stderr
    assert "create clusterroles.rbac.authorization.k8s.io" in p.stderr and "nothing was changed" in p.stderr
    assert dk.kubectl("get", "namespace", NS, check=False).returncode != 0


def _fault_node(k, name, capacity=None, allocatable=None, ready="True", reason="KubeletReady", taints=None,
                labels=None):
    """A Node that no kubelet and no kwok manages, registered as a kubelet
    registers one (its status with the object): what the API shows of a node
    whose kubelet stopped, whose plugin marked a GPU unhealthy, and so on."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    base = {"cpu": "8", "memory": "32Gi", "pods": "110"}
    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": dict({"e2e-extra": "true", "accelerator": "nvidia",
                                                       "nvidia.com/gpu.present": "true"}, **(labels or {}))},
            "spec": {"taints": taints or []},
            "status": {"capacity": dict(base, **(capacity or {})),
                       "allocatable": dict(base, **(allocatable if allocatable is not None else capacity or {})),
                       "conditions": [{"type": "Ready", "status": ready, "reason": reason,
                                       "message": "set by the e2e test", "lastHeartbeatTime": now,
                                       "lastTransitionTime": now}]}}
    k.kubectl("create", "-f", "-", input=json.dumps(node))


def test_validate_names_each_fault_of_the_stack_with_its_check_id(dk):
    """Faults the API shows, each made on purpose and named by its own check id, exit 1:
    a GPU node whose kubelet stopped (NotReady), one whose device plugin marked a GPU
    unhealthy (allocatable < capacity), one labelled as a GPU node that advertises no
    GPU, a device plugin pod that never starts on a node, a node whose taint the plugin
    does not tolerate, and a DCGM exporter whose pods run (kwok) but whose metrics
    cannot be read (nothing listens at the pod's address)."""
    deploy(dk, "--with", "dcgm-exporter", "--timeout", "2m")
    fault_nodes = ["e2e-notready", "e2e-unhealthy", "e2e-no-gpu-resource", "e2e-foreign-taint"]
    try:
        _names_each_fault(dk, fault_nodes)
    finally:
        # no kubelet will ever confirm the deletion of the pods bound to these nodes:
        # the nodes go first (so the DaemonSets make no new pods), then their pods, forced
        dk.kubectl("delete", "nodes", *fault_nodes, "--ignore-not-found", "--wait=true", check=False)
        for n in fault_nodes:
            dk.kubectl("delete", "pods", "-n", NS, "--field-selector", "spec.nodeName=" + n, "--force",
                       "--grace-period=0", "--ignore-not-found", check=False)


def _names_each_fault(dk, fault_nodes):
    gpu = {"nvidia.com/gpu": "8"}
    _fault_node(dk, "e2e-notready", gpu, ready="False", reason="KubeletNotReady")
    _fault_node(dk, "e2e-unhealthy", gpu, allocatable={"nvidia.com/gpu": "7"})
    _fault_node(dk, "e2e-no-gpu-resource")
    _fault_node(dk, "e2e-foreign-taint", gpu,
                taints=[{"key": "example.com/maintenance", "value": "true", "effect": "NoSchedule"}])
    # the plugin's DaemonSet puts a pod on e2e-unhealthy (no taint): bound, never started
    def bound():
        pods = json.loads(dk.kubectl("get", "pods", "-n", NS, "-l", "app.kubernetes.io/name=nvidia-device-plugin",
                                     "-o", "json").stdout)["items"]
        return any(p["spec"].get("nodeName") == "e2e-unhealthy" for p in pods)
    deadline = time.time() + 60
    while not bound():
        assert time.time() < deadline, "no device plugin pod was bound to e2e-unhealthy"
        time.sleep(0.5)
    nodes = ["gpu-node-1", *fault_nodes]
    p = dk.gpuctl("validate", "--only", "cluster", *nodes, "-o", "json", check=1, timeout=120)
    doc = json.loads(p.stdout)
    res = {(c["target"], c["id"]): c for c in doc["checks"]}

    def failed(target, cid, text):
        c = res[(target, cid)]
        assert c["status"] == "fail" and text in c["message"], c
        return c
    failed("e2e-notready", "node.ready", "not Ready (False: KubeletNotReady)")
    assert "kubectl describe node" in res[("e2e-notready", "node.ready")]["hint"]
    failed("e2e-unhealthy", "node.gpu-health", "nvidia.com/gpu 7 of 8 allocatable")
    assert "unhealthy" in res[("e2e-unhealthy", "node.gpu-health")]["hint"]
    failed("e2e-no-gpu-resource", "node.gpu-resource", "the node advertises no nvidia.com/gpu")
    failed("e2e-unhealthy", "node.device-plugin", "not ready")
    c = failed("e2e-foreign-taint", "node.device-plugin", "it does not tolerate the node's taints")
    assert "toleration" in c["hint"]
    c = failed("cluster", "cluster.dcgm-exporter", "its metrics cannot be read")
    assert f"{NS}/dcgm-exporter ready on" in c["message"], c
    # the healthy kwok node beside them passes what concerns it alone
    for cid in ("node.ready", "node.gpu-resource", "node.gpu-health", "node.device-plugin"):
        assert res[("gpu-node-1", cid)]["status"] == "pass", res[("gpu-node-1", cid)]
    assert doc["ok"] is False and doc["summary"]["failed"] == sum(1 for c in doc["checks"] if c["status"] == "fail")
