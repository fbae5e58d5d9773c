"""gpuctl on nodes that really run pods: the rig's kubelet-gpu-node-1 (1 GPU) and
kubelet-gpu-node-2 (2 GPUs) run a real kubelet of the cluster's release on
their own containerd and runc (tests/rig/lib/kubelet.sh).  The device plugin is
the real one (built from its Go module, its image imported under its real
name), talking to the NVML stand-in; only the GPU is simulated.

The flow a user runs: label, taint, deploy (node phase over SSH, then the
plugin DaemonSet), pods that ask for a GPU see exactly theirs, slice 4 -> 8 ->
2 -> none with the capacity the plugin advertises checked after each,
gpu-feature-discovery's labels put on the Nodes by the real Node Feature
Discovery master (installed as a user would, kept to the end), per-node
configs on two node groups, shared pods on one GPU, smoke-test, validate,
MPS through the plugin's own MPS control daemon, cleanup.  The module is that flow in order: the fixture records
each node as it was before the first gpuctl command (its labels, taints and
containerd config, read on the node), and the last test proves that after
cleanup every node, and the cluster, is back to it: validate again, then
direct reads through the rig and the API."""
import json
import os
import subprocess
import time

import pytest

from conftest import ROOT, assert_junit_schema, rig_up

NODES = ["kubelet-gpu-node-1", "kubelet-gpu-node-2"]
GPUS = {"kubelet-gpu-node-1": 1, "kubelet-gpu-node-2": 2}
NS = "nvidia-device-plugin"
TEST_NS = "gpuctl-e2e-kubelet"
CONF = "/etc/containerd/config.toml"
DROPIN = "/etc/containerd/conf.d/99-gpuctl-nvidia.toml"


@pytest.fixture(scope="module")
def kr(cluster, gpuctl_bin, tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the rig needs root (network and mount namespaces)")
    env = rig_up(reset=NODES, kubelet=True)
    k = Kubelets(env, gpuctl_bin, str(tmp_path_factory.mktemp("kubelet")))
    for ns in (NS, TEST_NS, "gpuctl-smoke-test"):
        k.kubectl("delete", "pods", "-n", ns, "--all", "--force", "--grace-period=0", check=False)
    k.kubectl("delete", "namespace", NS, TEST_NS, "--ignore-not-found", "--wait=true", "--timeout=120s", check=False)
    k.kubectl("create", "namespace", TEST_NS)
    # the nodes as they were before the flow: what cleanup must give back
    k.before = {n: k.state(n) for n in NODES}
    yield k
    k.kubectl("delete", "namespace", NS, TEST_NS, "--ignore-not-found", "--wait=false", check=False)
    subprocess.run([os.path.join(ROOT, "tests/rig/down")], capture_output=True, text=True)


@pytest.fixture(autouse=True)
def diagnostics_on_failure(request):
    """After a failed test of this module: what the nodes advertise, the GPU
    pods, and the last lines of each node's kubelet and device plugin logs
    (printed; pytest shows them with the failure). A flake read from CI's
    output alone is otherwise a guess."""
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is None or not rep.failed or "kr" not in request.fixturenames:
        return
    k = request.getfixturevalue("kr")
    try:
        print("== diagnostics after the failure")
        for n in NODES:
            st = k.node(n)["status"]
            print(f"{n}: capacity {st.get('capacity')} allocatable {st.get('allocatable')}")
        print(k.kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout)
        for n in NODES:
            for what, cmd in (("kubelet log", "tail -n 40 /var/log/kubelet.log"),
                              ("device plugin logs", "tail -n 30 /var/log/pods/*device-plugin*/*/*.log"),
                              ("containers that restarted: the end of their previous run",
                               "for f in /var/log/pods/*/*/0.log; do [ -e \"${f%0.log}1.log\" ] || continue; "
                               "echo \"== $f\"; tail -n 8 \"$f\"; done")):
                print(f"== {n}: {what}, last lines")
                print(subprocess.run([os.path.join(ROOT, "tests/rig/exec"), n, "--", "sh", "-c", cmd],
                                     capture_output=True, text=True, timeout=60).stdout)
    except Exception as e:  # diagnostics never hide the failure itself
        print(f"(diagnostics failed: {e})")


class Kubelets:
    def __init__(self, env, gpuctl_bin, tmp):
        self.env, self.bin, self.tmp = env, gpuctl_bin, tmp

    def gpuctl(self, *args, check=0, timeout=300):
        e = dict(os.environ, KUBECONFIG=self.env["KUBECONFIG"], NO_COLOR="1", HOME=self.tmp)
        e.pop("SSH_AUTH_SOCK", None)
        p = subprocess.run([self.bin, *args], capture_output=True, text=True, env=e, timeout=timeout)
        if check is not None:
            assert p.returncode == check, f"gpuctl {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}"
        return p

    def kubectl(self, *args, check=True, input=None):
        p = subprocess.run([self.env["KUBECTL"], "--kubeconfig", self.env["KUBECONFIG"], *args],
                           capture_output=True, text=True, input=input, timeout=120)
        if check:
            assert p.returncode == 0, f"kubectl {' '.join(args)}: {p.stderr}"
        return p

    def exec(self, node, *cmd):
        p = subprocess.run([os.path.join(ROOT, "tests/rig/exec"), node, "--", *cmd], capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0, f"rig exec {node} {cmd}: {p.stderr}"
        return p.stdout

    def node(self, name):
        return json.loads(self.kubectl("get", "node", name, "-o", "json").stdout)

    def state(self, name):
        """What cleanup must give back: the node's labels and taints (API), its
        containerd config's bytes, digest and mode (read on the node)."""
        node = self.node(name)
        return {"labels": node["metadata"].get("labels", {}), "taints": node["spec"].get("taints", []),
                "containerd": self.exec(name, "cat", CONF),
                "containerd-file": self.exec(name, "sh", "-c", f"sha256sum {CONF}; stat -c '%s %a %U:%G' {CONF}"),
                "dropin": self.exec(name, "sh", "-c", f"test -e {DROPIN} && echo present || echo absent").strip()}

    def owned(self):
        """Every object of every listable kind that carries gpuctl's managed-by
        label, read by kubectl (not by gpuctl's own list of kinds)."""
        kinds = self.kubectl("api-resources", "--verbs=list", "-o", "name").stdout.split()
        kinds = [k for k in kinds if k not in ("events", "events.events.k8s.io", "componentstatuses")]
        out = self.kubectl("get", ",".join(kinds), "-A", "-l", "app.kubernetes.io/managed-by=gpuctl", "-o", "name",
                           "--ignore-not-found").stdout
        return sorted(l for l in out.splitlines() if l.strip())

    def gpus(self, name, field="allocatable"):
        return int(self.node(name)["status"].get(field, {}).get("nvidia.com/gpu", "0"))

    def wait(self, what, fn, timeout=90):
        deadline = time.time() + timeout
        while True:
            v = fn()
            if v:
                return v
            assert time.time() < deadline, f"timed out after {timeout}s waiting for {what}"
            time.sleep(0.5)

    def pod(self, name, node, gpus=1, command="nvidia-smi -L", image="localhost/gpuctl-rig/busybox:1",
            runtime="nvidia"):
        spec = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": TEST_NS},
                "spec": {"restartPolicy": "Never", "nodeSelector": {"kubernetes.io/hostname": node},
                         "terminationGracePeriodSeconds": 0,
                         "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                         "containers": [{"name": "c", "image": image, "imagePullPolicy": "Never",
                                         "command": ["sh", "-c", command]}]}}
        if runtime:
            spec["spec"]["runtimeClassName"] = runtime
        if gpus:
            spec["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": gpus}}
        self.kubectl("apply", "-f", "-", input=json.dumps(spec))

    def phase(self, name):
        p = self.kubectl("get", "pod", "-n", TEST_NS, name, "-o", "jsonpath={.status.phase}", check=False)
        return p.stdout if p.returncode == 0 else ""

    def logs(self, name):
        return self.kubectl("logs", "-n", TEST_NS, name).stdout

    def delete_pods(self):
        self.kubectl("delete", "pods", "-n", TEST_NS, "--all", "--grace-period=0", "--force", "--wait=true",
                     "--timeout=60s", check=False)


def uuids(text):
    return [l.split("UUID: ")[1].rstrip(")") for l in text.splitlines() if "(UUID: GPU-" in l]


def test_the_kubelet_nodes_are_real_and_run_pods(kr):
    for n in NODES:
        node = kr.node(n)
        assert "kwok.x-k8s.io/node" not in node["metadata"].get("annotations", {})
        assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.36.3"
        assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
        addr = [a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"]
        assert addr and addr[0].startswith("10.77.0.")
    kr.pod("hello", NODES[0], gpus=0, runtime=None, command="echo hello from $(hostname)")
    kr.wait("the pod to complete", lambda: kr.phase("hello") == "Succeeded")
    assert kr.logs("hello").strip() == "hello from hello"
    # a real container on the node's containerd (the CRI's k8s.io namespace)
    assert "hello" in kr.exec(NODES[0], "crictl", "ps", "-a", "--name", "c", "-o", "json")
    kr.delete_pods()


def test_label_taint_deploy_from_nothing_then_nothing_changes(kr):
    p = kr.gpuctl("label", *NODES)
    assert "2 labeled" in p.stderr or "2 node(s): 2 labeled" in p.stdout + p.stderr
    kr.gpuctl("taint", *NODES)
    inv = kr.env["GPUCTL_RIG_INVENTORY"]
    p = kr.gpuctl("deploy", *NODES, "--inventory", inv, "-o", "json", "--timeout", "3m")
    doc = json.loads(p.stdout)
    nodes = {n["name"]: n for n in doc["nodes"]}
    assert all(nodes[n]["result"] == "changed" for n in NODES), nodes
    objs = {(o["kind"], o["name"]): o for o in doc["objects"]}
    assert objs[("DaemonSet", "nvidia-device-plugin")]["result"] == "created"
    assert objs[("DaemonSet", "nvidia-device-plugin")]["ready"] is True
    # the real plugin registered with each real kubelet: one nvidia.com/gpu per GPU
    for n in NODES:
        kr.wait(f"{n} to advertise its GPUs", lambda n=n: kr.gpus(n) == GPUS[n])
        ps = kr.exec(n, "crictl", "ps", "--name", "nvidia-device-plugin-ctr", "-q").split()
        assert len(ps) == 1, f"{n}: the plugin container is not running: {ps}"
        assert "Registered device plugin for 'nvidia.com/gpu' with Kubelet" in kr.exec(
            n, "sh", "-c", "cat /var/log/pods/nvidia-device-plugin_*/nvidia-device-plugin-ctr/*.log")
    # the second run changes nothing and says so
    p = kr.gpuctl("deploy", *NODES, "--inventory", inv, "-o", "json", "--timeout", "3m")
    doc = json.loads(p.stdout)
    assert {n["result"] for n in doc["nodes"]} == {"unchanged"}, doc["nodes"]
    assert {o["result"] for o in doc["objects"]} == {"unchanged"}, doc["objects"]


def test_a_gpu_pod_sees_exactly_its_gpu(kr):
    node = NODES[1]
    have = uuids(kr.exec(node, "nvidia-smi", "-L"))
    assert len(have) == 2
    kr.pod("gpu-a", node)
    kr.pod("gpu-b", node)
    kr.wait("both GPU pods to complete", lambda: kr.phase("gpu-a") == kr.phase("gpu-b") == "Succeeded")
    a, b = uuids(kr.logs("gpu-a")), uuids(kr.logs("gpu-b"))
    assert len(a) == 1 and len(b) == 1, (a, b)
    assert a[0] in have and b[0] in have and a != b, (a, b, have)
    kr.delete_pods()


@pytest.mark.parametrize("replicas", [4, 8, 2, None])
def test_slice_changes_what_the_real_plugin_advertises(kr, replicas):
    args = ["slice", "none"] if replicas is None else ["slice", "--replicas", str(replicas)]
    p = kr.gpuctl(*args, *NODES, "-o", "json", "--timeout", "2m")
    doc = json.loads(p.stdout)
    r = replicas or 1
    for item in doc["nodes"]:
        assert item["result"] in ("changed", "sliced"), item
    for n in NODES:
        assert kr.gpus(n, "capacity") == GPUS[n] * r
        assert kr.gpus(n) == GPUS[n] * r
    # a second run: nothing to do
    p = kr.gpuctl(*args, *NODES, "-o", "json", "--timeout", "2m")
    assert {i["result"] for i in json.loads(p.stdout)["nodes"]} == {"unchanged"}


NFD_NS = "node-feature-discovery"
NFD_FILES = [os.path.join(ROOT, "tests/fixtures/nfd", f) for f in ("nfd-api-crds.yaml", "nfd-master.yaml")]
NFD_OWNED = "nfd.node.kubernetes.io/feature-labels"


@pytest.fixture(scope="module")
def nfd(kr):
    """Node Feature Discovery's real nfd-master (v0.18.3, built from its module by
    tests/rig/lib/build-nfd) as a user runs it beside gpuctl: its CRDs, then the
    master's deployment as its kustomize renders it (tests/fixtures/nfd), a pod on
    a kubelet node.  Installed once, by the first test that needs it, and kept to
    the end of the module, so that cleanup is judged with NFD still running (as
    on a user's cluster); removed after the module's last test."""
    kr.kubectl("apply", "--server-side", "-f", NFD_FILES[0])
    kr.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/nodefeatures.nfd.k8s-sigs.io",
               "crd/nodefeaturerules.nfd.k8s-sigs.io", "crd/nodefeaturegroups.nfd.k8s-sigs.io")
    kr.kubectl("apply", "--server-side", "-f", NFD_FILES[1])
    p = kr.kubectl("rollout", "status", "-n", NFD_NS, "deployment/nfd-master", "--timeout=110s", check=False)
    assert p.returncode == 0, (p.stdout, p.stderr, kr.kubectl("get", "pods", "-n", NFD_NS, "-o", "wide").stdout)
    yield
    kr.kubectl("delete", "-f", NFD_FILES[1], "--ignore-not-found", "--wait=true", "--timeout=100s", check=False)
    kr.kubectl("delete", "-f", NFD_FILES[0], "--ignore-not-found", "--wait=true", "--timeout=60s", check=False)


def _gpu_name(kr, node):
    """The GPU's name as the node's nvidia-smi -L prints it (the NVML stand-in's facts)."""
    line = kr.exec(node, "nvidia-smi", "-L").splitlines()[0]
    return line.split(": ", 1)[1].split(" (UUID: ")[0]


def _node_features(kr):
    """node -> the NodeFeature object GFD wrote for it."""
    items = json.loads(kr.kubectl("get", "nodefeatures.nfd.k8s-sigs.io", "-A", "-o", "json").stdout)["items"]
    return {i["metadata"].get("labels", {}).get("nfd.node.kubernetes.io/node-name"): i for i in items}


def _gfd_labels_agree(kr, want):
    """Each node carries want[node] (GFD's labels, put there by nfd-master) and every
    label of its NodeFeature object, and nfd-master's annotation names them as its own."""
    nf = _node_features(kr)
    for n in NODES:
        meta = kr.node(n)["metadata"]
        labels, owned = meta.get("labels", {}), meta.get("annotations", {}).get(NFD_OWNED, "").split(",")
        if n not in nf or any(labels.get(k) != v for k, v in want[n].items()):
            return False
        feature_labels = nf[n]["spec"].get("labels", {})
        if any(labels.get(k) != v or k not in owned for k, v in feature_labels.items()):
            return False
    return True


def test_gfd_labels_the_nodes_through_the_real_nfd_master(kr, nfd):
    """deploy --with gfd runs the real gpu-feature-discovery (v0.19.3, from the
    device plugin's image) on each kubelet node; it reads the NVML stand-in's
    replayed H100 facts and writes a NodeFeature object, which the real nfd-master
    turns into the node's labels: product, count (1 and 2), replicas and
    sharing-strategy, following slice --replicas 4 and back after slice none;
    validate's node.sharing then passes on GFD's labels."""
    inv = kr.env["GPUCTL_RIG_INVENTORY"]
    p = kr.gpuctl("deploy", "--skip", "nodes", *NODES, "--with", "gfd", "-o", "json", "--timeout", "3m")
    objs = {(o["kind"], o["name"]): o for o in json.loads(p.stdout)["objects"]}
    gfd = objs[("DaemonSet", "gpu-feature-discovery")]
    assert gfd["result"] == "created" and gfd["ready"] is True, gfd
    product = {n: _gpu_name(kr, n).replace(" ", "-") for n in NODES}
    assert set(product.values()) == {"NVIDIA-H100-80GB-HBM3"}, product

    def want(replicas, strategy, suffix=""):
        return {n: {"nvidia.com/gpu.product": product[n] + suffix, "nvidia.com/gpu.count": str(GPUS[n]),
                    "nvidia.com/gpu.replicas": str(replicas), "nvidia.com/gpu.sharing-strategy": strategy}
                for n in NODES}
    # the flow before this test left both nodes on config "none"
    kr.wait("nfd-master to put GFD's labels on the nodes", lambda: _gfd_labels_agree(kr, want(1, "none")), 120)
    nf = _node_features(kr)
    for n in NODES:
        obj = nf[n]
        # written by GFD from its pod (owned by its DaemonSet: garbage-collected with it)
        assert obj["metadata"]["name"] == "nvidia-features-for-" + n and obj["metadata"]["namespace"] == NS, obj
        owners = {(o["kind"], o["name"]) for o in obj["metadata"].get("ownerReferences", [])}
        assert ("DaemonSet", "gpu-feature-discovery") in owners, obj["metadata"]
        assert obj["spec"]["labels"]["nvidia.com/gpu.count"] == str(GPUS[n]), obj["spec"]["labels"]
        assert "nvidia.com/gfd.timestamp" in obj["spec"]["labels"], obj["spec"]["labels"]
    # gpuctl label ran before GFD: the nodes had no product, so no gpu-type; now they do
    kr.gpuctl("label", *NODES)
    for n in NODES:
        assert kr.node(n)["metadata"]["labels"].get("gpu-type") == product[n], kr.node(n)["metadata"]["labels"]

    # slice waits for GFD's labels as well as the capacity: they agree when it returns
    p = kr.gpuctl("slice", "--replicas", "4", *NODES, "-o", "json", "--timeout", "2m")
    assert all(i.get("gfdLabelsChecked") is True for i in json.loads(p.stdout)["nodes"]), p.stdout
    assert _gfd_labels_agree(kr, want(4, "time-slicing", "-SHARED")), {n: kr.node(n)["metadata"]["labels"] for n in NODES}
    for n in NODES:
        assert kr.gpus(n) == GPUS[n] * 4
    p = kr.gpuctl("validate", *NODES, "--inventory", inv, "-o", "json", check=None)
    doc = json.loads(p.stdout)
    assert p.returncode == 0, json.dumps([c for c in doc["checks"] if c["status"] == "fail"], indent=1)
    res = _checks(doc)
    for n in NODES:
        c = res[(n, "node.sharing")]
        assert c["status"] == "pass" and f"time-slicing x4 (nvidia.com/gpu {GPUS[n] * 4})" in c["message"], c
        # the product and GPU count are now judged on GFD's labels against the node's nvidia-smi
        c = res[(n, "node.product")]
        assert c["status"] == "pass" and c["message"].startswith(product[n] + "-SHARED (nvidia-smi: "), c
        assert res[(n, "node.gpus")]["status"] == "pass", res[(n, "node.gpus")]
        # gpu-type is the GPU's, not GFD's -SHARED product of a time-sliced node
        assert res[(n, "node.labels")]["status"] == "pass", res[(n, "node.labels")]

    p = kr.gpuctl("slice", "none", *NODES, "-o", "json", "--timeout", "2m")
    assert all(i.get("gfdLabelsChecked") is True for i in json.loads(p.stdout)["nodes"]), p.stdout
    assert _gfd_labels_agree(kr, want(1, "none")), {n: kr.node(n)["metadata"]["labels"] for n in NODES}
    p = kr.gpuctl("validate", *NODES, "--inventory", inv, "-o", "json", check=0)
    res = _checks(json.loads(p.stdout))
    for n in NODES:
        c = res[(n, "node.sharing")]
        assert c["status"] == "pass" and f"no sharing x1 (nvidia.com/gpu {GPUS[n]})" in c["message"], c


def test_per_node_configs_on_two_node_groups(kr):
    kr.gpuctl("slice", "--replicas", "4", NODES[0], "--timeout", "2m")
    kr.gpuctl("slice", "--replicas", "2", NODES[1], "--timeout", "2m")
    assert kr.gpus(NODES[0]) == 4
    assert kr.gpus(NODES[1]) == 4  # 2 GPUs x 2
    labels = {n: kr.node(n)["metadata"]["labels"].get("nvidia.com/device-plugin.config") for n in NODES}
    assert labels[NODES[0]] != labels[NODES[1]], labels


def test_time_sliced_pods_share_one_gpu_and_one_more_stays_pending(kr):
    node = NODES[0]
    kr.gpuctl("slice", "--replicas", "4", node, "--timeout", "2m")
    assert kr.gpus(node) == 4
    for i in range(4):
        kr.pod(f"share-{i}", node, command="nvidia-smi -L; sleep 300")
    kr.wait("4 pods Running at once", lambda: all(kr.phase(f"share-{i}") == "Running" for i in range(4)), 120)
    seen = {tuple(uuids(kr.logs(f"share-{i}"))) for i in range(4)}
    assert len(seen) == 1 and len(next(iter(seen))) == 1, seen
    kr.pod("share-extra", node, command="nvidia-smi -L")

    def pending_for_gpu():
        pod = json.loads(kr.kubectl("get", "pod", "-n", TEST_NS, "share-extra", "-o", "json").stdout)
        for c in pod["status"].get("conditions", []):
            if c["type"] == "PodScheduled" and c["status"] == "False":
                return "nvidia.com/gpu" in c.get("message", "")
        return False
    kr.wait("the 5th pod to be unschedulable for nvidia.com/gpu", pending_for_gpu, 60)
    assert kr.phase("share-extra") == "Pending"
    kr.delete_pods()


def _checks(doc):
    return {(c["target"], c["id"]): c for c in doc["checks"]} if "checks" in doc else {}


def test_smoke_test_proves_gpus_and_sharing_and_removes_its_pods(kr):
    kr.gpuctl("slice", "--replicas", "4", NODES[0], "--timeout", "2m")
    kr.gpuctl("slice", "none", NODES[1], "--timeout", "2m")
    p = kr.gpuctl("smoke-test", *NODES, "-o", "json", "--timeout", "3m", "--junit", os.path.join(kr.tmp, "s.xml"))
    doc = json.loads(p.stdout)
    assert doc["kind"] == "SmokeTestReport", doc
    rows = {(r.get("target"), r.get("id", r.get("check"))): r for r in doc.get("checks", [])}
    text = json.dumps(doc)
    want_pass = [(NODES[0], i) for i in ("smoke.gpu", "smoke.allocatable", "smoke.concurrent", "smoke.same-gpu",
                                          "smoke.overcommit")] + [(NODES[1], "smoke.gpu")]
    for key in want_pass:
        assert key in rows, (key, sorted(rows))
        assert rows[key]["status"] == "pass", rows[key]
    # node 2 does not share: its sharing rows are skipped, never failed
    assert rows[(NODES[1], "smoke.concurrent")]["status"] == "skip"
    # the GPU the single pod saw is one of the node's
    have = uuids(kr.exec(NODES[0], "nvidia-smi", "-L"))
    assert have[0] in rows[(NODES[0], "smoke.gpu")]["message"], text
    # nothing left behind
    left = kr.kubectl("get", "pods", "-n", "gpuctl-smoke-test", "-l", "gpuctl.io/smoke-run=" + doc["runId"],
                      "-o", "name").stdout
    assert left.strip() == "", left
    assert "<testsuite" in open(os.path.join(kr.tmp, "s.xml")).read()
    assert_junit_schema(os.path.join(kr.tmp, "s.xml"))


def test_smoke_test_measure_runs_the_load_in_every_shared_pod_at_once(kr):
    """gpuctl's own load (gpuctl-gpuload, shipped in a ConfigMap) in each pod; on the
    rig the libcuda stand-in time-slices a simulated GPU, so 4 pods share it."""
    kr.gpuctl("slice", "--replicas", "4", NODES[0], "--timeout", "2m")
    p = kr.gpuctl("smoke-test", NODES[0], "--measure", "--measure-seconds", "3", "-o", "json", "--timeout", "3m")
    doc = json.loads(p.stdout)
    m = [r for r in doc["checks"] if r["id"] == "smoke.measure"][0]
    assert m["status"] in ("pass", "warn"), m
    pods = m["pods"] if "pods" in m else m.get("details", {}).get("pods")
    assert pods and len(pods) == 4, m
    assert all(v.get("gflops", 0) > 0 for v in pods.values()), m
    assert "fairness" in json.dumps(m) and "in all" in m["message"], m
    cm = kr.kubectl("get", "configmap", "-n", "gpuctl-smoke-test", "gpuctl-gpuload", "-o", "json").stdout
    assert json.loads(cm)["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "gpuctl"


def test_validate_proves_the_stack_on_real_nodes_and_names_each_fault(kr):
    kr.gpuctl("slice", "--replicas", "4", NODES[0], "--timeout", "2m")
    kr.gpuctl("slice", "none", NODES[1], "--timeout", "2m")
    inv = kr.env["GPUCTL_RIG_INVENTORY"]
    p = kr.gpuctl("validate", *NODES, "--inventory", inv, "-o", "json", check=None)
    doc = json.loads(p.stdout)
    res = _checks(doc)
    assert p.returncode == 0, json.dumps([c for c in doc["checks"] if c["status"] == "fail"], indent=1)
    for c in ("cluster.device-plugin", "cluster.conflicts"):
        assert res[("cluster", c)]["status"] == "pass", res[("cluster", c)]
    assert res[("cluster", "cluster.dcgm-exporter")]["status"] == "skip"
    for n in NODES:
        for c in ("node.labels", "node.taints", "node.device-plugin", "node.gpu-health", "node.sharing",
                  "node.compute-mode", "node.plugin-config"):
            assert res[(n, c)]["status"] == "pass", res[(n, c)]
    # what the plugin really loaded, read on the node (its config-manager's link)
    assert res[(NODES[0], "node.plugin-config")]["message"] == 'the device plugin loaded config "ts-4"', res
    assert res[(NODES[1], "node.plugin-config")]["message"] == 'the device plugin loaded config "none"', res
    assert "time-slicing x4 (nvidia.com/gpu 4)" in res[(NODES[0], "node.sharing")]["message"]
    assert "no sharing x1 (nvidia.com/gpu 2)" in res[(NODES[1], "node.sharing")]["message"]
    assert "registered (nvidia.com/gpu 4)" in res[(NODES[0], "node.device-plugin")]["message"]

    # --smoke: smoke-test's per-node checks join the results, and its pods are gone afterwards
    p = kr.gpuctl("validate", NODES[0], "--only", "cluster", "--smoke", "-o", "json", "--smoke-timeout", "3m")
    res = _checks(json.loads(p.stdout))
    for c in ("smoke.gpu", "smoke.allocatable", "smoke.concurrent", "smoke.same-gpu", "smoke.overcommit"):
        assert res[(NODES[0], c)]["status"] == "pass", res[(NODES[0], c)]
    left = kr.kubectl("get", "pods", "-n", "gpuctl-smoke-test", "-l", "gpuctl.io/smoke-run", "-o", "name").stdout
    assert left.strip() == "", left
    p = kr.gpuctl("validate", "--smoke-timeout", "1m", check=2)
    assert "--smoke-image and --smoke-timeout go with --smoke" in p.stderr

    # a config label naming a config that does not exist
    old = kr.node(NODES[1])["metadata"]["labels"]["nvidia.com/device-plugin.config"]
    kr.kubectl("label", "node", NODES[1], "--overwrite", "nvidia.com/device-plugin.config=no-such-config")
    try:
        p = kr.gpuctl("validate", NODES[1], "--inventory", inv, "-o", "json", check=1)
        res = _checks(json.loads(p.stdout))
        c = res[(NODES[1], "node.sharing")]
        assert c["status"] == "fail" and 'names config "no-such-config"' in c["message"], c
        # read on the node: the plugin's config-manager cannot follow the label, so what the
        # plugin loaded (the last config, or none) is not what the node wants
        c = res[(NODES[1], "node.plugin-config")]
        assert c["status"] == "fail" and 'the node wants "no-such-config"' in c["message"], c
        assert "config-manager" in c["hint"], c
    finally:
        kr.kubectl("label", "node", NODES[1], "--overwrite", "nvidia.com/device-plugin.config=" + old)
        # the config-manager follows the label back and restarts the plugin, which
        # re-registers with the kubelet: the GPUs are allocatable again after that
        kr.wait("the plugin on the node to load its config again",
                lambda: _checks(json.loads(kr.gpuctl("validate", NODES[1], "--inventory", inv, "-o", "json",
                                                     check=None).stdout))[(NODES[1], "node.plugin-config")]["status"]
                == "pass", 120)
        kr.wait("the node's GPUs to be allocatable again", lambda: kr.gpus(NODES[1]) == GPUS[NODES[1]], 120)

    # a second device plugin (a DaemonSet that runs the plugin's image, targeting no node)
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "other-plugin", "namespace": TEST_NS},
          "spec": {"selector": {"matchLabels": {"app": "other-plugin"}},
                   "template": {"metadata": {"labels": {"app": "other-plugin"}},
                                "spec": {"nodeSelector": {"no-such-label": "x"},
                                         "containers": [{"name": "p", "image": "nvcr.io/nvidia/k8s-device-plugin:v0.17.2"}]}}}}
    kr.kubectl("apply", "-f", "-", input=json.dumps(ds))
    try:
        p = kr.gpuctl("validate", *NODES, "--only", "cluster", "-o", "json", "--junit", os.path.join(kr.tmp, "v.xml"),
                      check=1)
        c = _checks(json.loads(p.stdout))[("cluster", "cluster.conflicts")]
        assert c["status"] == "fail" and f"{TEST_NS}/other-plugin" in c["message"], c
        assert "keep one" in c["hint"]
        assert_junit_schema(os.path.join(kr.tmp, "v.xml"))
        xml = open(os.path.join(kr.tmp, "v.xml")).read()
        assert 'name="cluster.conflicts"' in xml and "<failure" in xml
    finally:
        kr.kubectl("delete", "daemonset", "-n", TEST_NS, "other-plugin", "--ignore-not-found")


def test_ctrl_c_during_smoke_test_leaves_no_pods(kr):
    import signal
    kr.gpuctl("slice", "--replicas", "4", NODES[0], "--timeout", "2m")
    e = dict(os.environ, KUBECONFIG=kr.env["KUBECONFIG"], NO_COLOR="1", HOME=kr.tmp)
    proc = subprocess.Popen([kr.bin, "smoke-test", NODES[0], "--measure", "--measure-seconds", "60", "-o", "json",
                             "--timeout", "3m"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)

    def running_pods():
        out = kr.kubectl("get", "pods", "-n", "gpuctl-smoke-test", "-l", "gpuctl.io/smoke-run",
                         "--field-selector=status.phase=Running", "-o", "name", check=False).stdout
        return [l for l in out.splitlines() if l.strip()]
    try:
        kr.wait("the smoke test's pods to run", lambda: len(running_pods()) >= 2, 120)
    except BaseException:
        proc.kill()
        raise
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode != 0, (out, err)
    left = kr.kubectl("get", "pods", "-n", "gpuctl-smoke-test", "-l", "gpuctl.io/smoke-run", "-o", "name").stdout
    assert left.strip() == "", (left, err)


def test_smoke_test_fails_clearly_when_pods_cannot_run_and_cleans_up(kr):
    # what this test is about needs a node whose GPUs are allocatable
    kr.wait("the node's GPUs to be allocatable", lambda: kr.gpus(NODES[1]) > 0, 120)
    p = kr.gpuctl("smoke-test", NODES[1], "--image", "localhost/gpuctl-rig/no-such-image:1", "-o", "json",
                  "--timeout", "30s", check=1)
    doc = json.loads(p.stdout)
    gpu = [r for r in doc["checks"] if r.get("id", r.get("check")) == "smoke.gpu"][0]
    assert gpu["status"] == "fail", gpu
    assert any(w in json.dumps(gpu) for w in ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull")), gpu
    left = kr.kubectl("get", "pods", "-n", "gpuctl-smoke-test", "-l", "gpuctl.io/smoke-run=" + doc["runId"],
                      "-o", "name").stdout
    assert left.strip() == "", left


def test_smoke_test_names_each_sharing_fault_with_its_check_id(kr):
    """Sharing faults made on purpose, each failed by its own check, exit 1, and no
    pod left: GFD's count label stale (it says 1 GPU where the driver has 2, so the
    node advertises more than GPUs x replicas and its pods see more GPUs than
    it claims), a namespace quota that lets only two of the four pods exist
    (they never all run at once), and the driver's libcuda missing (the
    measured load cannot start)."""
    kr.gpuctl("slice", "--replicas", "2", NODES[1], "--timeout", "2m")
    kr.wait("the plugin to advertise 2 GPUs x 2", lambda: kr.gpus(NODES[1]) == 4, 120)
    count = kr.node(NODES[1])["metadata"]["labels"].get("nvidia.com/gpu.count")
    kr.kubectl("label", "node", NODES[1], "--overwrite", "nvidia.com/gpu.count=1")
    try:
        p = kr.gpuctl("smoke-test", NODES[1], "-o", "json", "--timeout", "3m", check=1)
    finally:
        kr.kubectl("label", "node", NODES[1], "--overwrite",
                   f"nvidia.com/gpu.count={count}" if count else "nvidia.com/gpu.count-")
    doc = json.loads(p.stdout)
    rows = {r["id"]: r for r in doc["checks"] if r.get("target") == NODES[1]}
    assert rows["smoke.gpu"]["status"] == "pass", rows
    assert rows["smoke.concurrent"]["status"] == "pass", rows
    c = rows["smoke.allocatable"]
    assert c["status"] == "fail" and c["message"] == "nvidia.com/gpu 4, expected 1 GPU(s) x 2 replicas = 2", c
    c = rows["smoke.same-gpu"]
    assert c["status"] == "fail" and c["message"] == "4 pods saw 2 different GPUs, but the node has 1", c
    left = kr.kubectl("get", "pods", "-n", "gpuctl-smoke-test", "-l", "gpuctl.io/smoke-run=" + doc["runId"],
                      "-o", "name").stdout
    assert left.strip() == "", left

    # a quota in the namespace the smoke test is told to use: two pods at most
    ns = "gpuctl-e2e-quota"
    kr.kubectl("create", "namespace", ns)
    try:
        kr.kubectl("create", "quota", "two-pods", "-n", ns, "--hard=pods=2")
        p = kr.gpuctl("smoke-test", NODES[1], "-n", ns, "-o", "json", "--timeout", "2m", check=1)
        doc = json.loads(p.stdout)
        rows = {r["id"]: r for r in doc["checks"] if r.get("target") == NODES[1]}
        assert rows["smoke.gpu"]["status"] == "pass", rows
        c = rows["smoke.concurrent"]
        assert c["status"] == "fail" and "before all 4 were Running" in c["message"], c
        assert "exceeded quota" in c["message"], c
        for cid in ("smoke.same-gpu", "smoke.overcommit"):
            assert rows[cid]["status"] == "skip", rows[cid]
        left = kr.kubectl("get", "pods", "-n", ns, "-o", "name").stdout
        assert left.strip() == "", left

        # a quota of exactly the four sharing pods: they all run (the single-GPU pod has
        # completed, so it no longer counts), but the fifth, the pod that must stay
        # Pending for lack of a GPU, cannot even be created: nothing is proven
        kr.kubectl("delete", "quota", "two-pods", "-n", ns)
        kr.kubectl("create", "quota", "four-pods", "-n", ns, "--hard=pods=4")
        p = kr.gpuctl("smoke-test", NODES[1], "-n", ns, "-o", "json", "--timeout", "2m", check=1)
        doc = json.loads(p.stdout)
        rows = {r["id"]: r for r in doc["checks"] if r.get("target") == NODES[1]}
        for cid in ("smoke.gpu", "smoke.concurrent", "smoke.same-gpu", "smoke.allocatable"):
            assert rows[cid]["status"] == "pass", rows[cid]
        c = rows["smoke.overcommit"]
        assert c["status"] == "fail" and "exceeded quota: four-pods" in c["message"], c
        left = kr.kubectl("get", "pods", "-n", ns, "-o", "name").stdout
        assert left.strip() == "", left
    finally:
        kr.kubectl("delete", "namespace", ns, "--wait=true", "--timeout=60s", check=False)

    # the driver's CUDA library gone from the node (nvidia-smi still works, so the
    # runtime gives the pods no libcuda): the pods run together, the load cannot start
    lib = "/usr/local/nvidia/lib64/libcuda.so.1"
    kr.gpuctl("slice", "--replicas", "4", NODES[0], "--timeout", "2m")
    kr.exec(NODES[0], "mv", lib, lib + ".e2e")
    try:
        p = kr.gpuctl("smoke-test", NODES[0], "--measure", "--measure-seconds", "2", "-o", "json", "--timeout", "3m",
                      check=1)
    finally:
        kr.exec(NODES[0], "mv", lib + ".e2e", lib)
    doc = json.loads(p.stdout)
    rows = {r["id"]: r for r in doc["checks"] if r.get("target") == NODES[0]}
    for cid in ("smoke.gpu", "smoke.concurrent"):
        assert rows[cid]["status"] == "pass", rows[cid]
    c = rows["smoke.measure"]
    assert c["status"] == "fail" and c["message"] == "4 of 4 pods measured nothing (gpuctl-gpuload failed)", c
    assert "libcuda.so.1 not found" in c["hint"], c


MPS_DAEMON = "app.kubernetes.io/name=nvidia-device-plugin-mps-control-daemon"


def _compute_modes(kr, node):
    return kr.exec(node, "nvidia-smi", "--query-gpu=compute_mode", "--format=csv,noheader").split()


def _mps_daemon_pods(kr):
    items = json.loads(kr.kubectl("get", "pods", "-n", NS, "-l", MPS_DAEMON, "-o", "json").stdout)["items"]
    return {p["spec"].get("nodeName"): p for p in items if not p["metadata"].get("deletionTimestamp")}


def test_mps_shares_through_the_plugins_control_daemon_and_smoke_mps_names_a_reset(kr):
    """slice mps on a real node: gpuctl labels it nvidia.com/mps.capable=true, the
    plugin's MPS control daemon (deployed with the plugin) starts there, sets the
    GPUs to EXCLUSIVE_PROCESS through the node's nvidia-smi and runs
    nvidia-cuda-mps-control -d (the driver's part, a stand-in: no GPU); the real
    plugin finds the daemon healthy and advertises 2 GPUs x 2. smoke-test proves
    it (smoke.mps: every pod sees Exclusive_Process); a compute mode reset behind
    MPS's back fails smoke.mps; slice none stops the daemon, which puts the GPUs
    back to Default."""
    node = NODES[1]
    p = kr.gpuctl("slice", "mps", "--replicas", "2", node, "-o", "json", "--timeout", "3m")
    doc = json.loads(p.stdout)
    row = [n for n in doc["nodes"] if n["name"] == node][0]
    assert row["strategy"] == "mps" and row["after"] == 4, row
    assert kr.node(node)["metadata"]["labels"]["nvidia.com/mps.capable"] == "true"
    # where GFD labels the node (here, through nfd-master), its nvidia.com/mps.capable
    # brings the daemon, which may start after the plugin has already been restarted
    kr.wait("the MPS control daemon to set EXCLUSIVE_PROCESS",
            lambda: _compute_modes(kr, node) == ["Exclusive_Process"] * 2, 90)
    pods = _mps_daemon_pods(kr)
    assert list(pods) == [node], pods
    logs = kr.kubectl("logs", "-n", NS, pods[node]["metadata"]["name"], "-c", "mps-control-daemon-ctr").stdout
    assert "Starting control daemon" in logs or "Staring MPS daemon" in logs, logs
    name = kr.kubectl("get", "pods", "-n", NS, "-l", "app.kubernetes.io/name=nvidia-device-plugin",
                      "--field-selector", f"spec.nodeName={node}", "-o", "jsonpath={.items[0].metadata.name}").stdout
    plugin = kr.kubectl("logs", "-n", NS, name, "-c", "nvidia-device-plugin-ctr").stdout
    assert "MPS daemon is healthy" in plugin, plugin[-3000:]
    try:
        p = kr.gpuctl("smoke-test", node, "-o", "json", "--timeout", "3m", check=None)
        doc = json.loads(p.stdout)
        rows = {r["id"]: r for r in doc["checks"] if r.get("target") == node}
        assert p.returncode == 0, rows
        for cid in ("smoke.gpu", "smoke.allocatable", "smoke.concurrent", "smoke.same-gpu", "smoke.overcommit",
                    "smoke.mps"):
            assert rows[cid]["status"] == "pass", rows[cid]
        # someone sets the compute mode back behind MPS's back
        kr.exec(node, "nvidia-smi", "-c", "DEFAULT")
        p = kr.gpuctl("smoke-test", node, "-o", "json", "--timeout", "3m", check=1)
        rows = {r["id"]: r for r in json.loads(p.stdout)["checks"] if r.get("target") == node}
        c = rows["smoke.mps"]
        assert c["status"] == "fail" and "compute mode is not Exclusive_Process" in c["message"], c
        assert "MPS control daemon" in c["hint"], c
        kr.exec(node, "nvidia-smi", "-c", "EXCLUSIVE_PROCESS")
    finally:
        kr.gpuctl("slice", "none", node, "--timeout", "3m")
    assert kr.node(node)["metadata"]["labels"]["nvidia.com/mps.capable"] == "false"
    kr.wait("the MPS control daemon to leave the node", lambda: not _mps_daemon_pods(kr), 120)
    kr.wait("the daemon's stop to reset the compute mode", lambda: _compute_modes(kr, node) == ["Default"] * 2, 60)
    assert kr.gpus(node) == 2


MIG_NODE = NODES[1]
REPLAY = "/usr/local/share/nvidia-smi-replay"


def _mig_layout(kr, layout):
    """An administrator puts the node's GPUs in MIG mode with LAYOUT (or "off") while
    no GPU pod runs, and the device plugin and GFD start afresh on the node (the
    GPU Operator's MIG manager stops them around the change): tests/rig/mig
    rewrites the node's GPU facts, then their pods there are deleted and the
    DaemonSets make new ones."""
    p = subprocess.run([os.path.join(ROOT, "tests/rig/mig"), MIG_NODE, layout], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    for app in ("nvidia-device-plugin", "gpu-feature-discovery"):
        kr.kubectl("delete", "pods", "-n", NS, "-l", "app.kubernetes.io/name=" + app,
                   "--field-selector", "spec.nodeName=" + MIG_NODE, "--wait=true", "--timeout=60s")
    kr.wait("the device plugin to be Ready again on " + MIG_NODE, lambda: _plugin_pods(kr).get(MIG_NODE, ("", 0))[1],
            120)


def _mig_devices(kr):
    """MIG UUID -> (GPU index, profile) from the node's facts."""
    out = kr.exec(MIG_NODE, "cat", REPLAY + "/mig.tsv")
    return {v[5]: (int(v[0]), v[1]) for v in (l.split("\t") for l in out.splitlines() if l.strip())}


class _MigNode:
    """The MIG node's state before a MIG test, and putting it back: MIG off, its
    plugin config label as it was, the plugin and GFD restarted, the capacity
    and GFD's product as before."""

    def __init__(self, kr):
        self.kr = kr
        node = kr.node(MIG_NODE)
        self.config = node["metadata"]["labels"].get("nvidia.com/device-plugin.config")
        self.product = node["metadata"]["labels"].get("nvidia.com/gpu.product")
        self.gpus = kr.gpus(MIG_NODE)

    def restore(self):
        kr = self.kr
        kr.delete_pods()
        if self.config:
            kr.kubectl("label", "node", MIG_NODE, "--overwrite", "nvidia.com/device-plugin.config=" + self.config)
        _mig_layout(kr, "off")

        seen = {}

        def back():
            node = kr.node(MIG_NODE)
            seen.update(labels={k: v for k, v in node["metadata"]["labels"].items() if k.startswith("nvidia.com/")},
                        capacity=node["status"]["capacity"], allocatable=node["status"]["allocatable"])
            return (kr.gpus(MIG_NODE) == self.gpus and kr.gpus(MIG_NODE, "capacity") == self.gpus and
                    seen["labels"].get("nvidia.com/gpu.product") == self.product)
        try:
            kr.wait(f"{MIG_NODE} back to {self.gpus} nvidia.com/gpu and product {self.product}", back, 150)
        except AssertionError as e:
            log = kr.exec(MIG_NODE, "sh", "-c", "tail -n 15 /var/log/pods/nvidia-device-plugin_*/nvidia-device-plugin-ctr/*.log"
                          " /var/log/pods/nvidia-device-plugin_gpu-feature-discovery*/*/*.log")
            raise AssertionError(f"{e}\n{json.dumps(seen, indent=1)}\n{log}") from None


def _smoke_rows(kr, node, check):
    p = kr.gpuctl("smoke-test", node, "-o", "json", "--timeout", "2m", check=check)
    doc = json.loads(p.stdout)
    left = kr.kubectl("get", "pods", "-n", "gpuctl-smoke-test", "-l", "gpuctl.io/smoke-run=" + doc["runId"],
                      "-o", "name").stdout
    assert left.strip() == "", left
    return {r["id"]: r for r in doc["checks"] if r.get("target") == node}


def test_mig_single_and_mixed_from_a_mig_configured_node(kr):
    """MIG on a real kubelet node: its two H100s put in MIG mode (all-1g.10gb: 7 MIG
    devices each), the real plugin builds its MIG devices (the driver's
    /proc/driver/nvidia-caps/mig-minors reaches its container through the runtime's
    hook) and, after gpuctl slice mig, advertises them as nvidia.com/gpu (single)
    or nvidia.com/mig-<profile> (mixed, on a 3g.40gb,2g.20gb,1g.10gb layout); a pod
    given one sees exactly that MIG device; smoke-test's smoke.mig passes on the
    per-profile capacity; gpuctl label keeps gpu-type the GPU's (GFD's product is
    then NVIDIA-H100-80GB-HBM3-MIG-1g.10gb)."""
    was = _MigNode(kr)
    n = GPUS[MIG_NODE]
    try:
        _mig_layout(kr, "all-1g.10gb")
        migs = _mig_devices(kr)
        assert len(migs) == 7 * n, migs
        p = kr.gpuctl("slice", "mig", "--mig-strategy", "single", MIG_NODE, "-o", "json", "--timeout", "2m")
        row = json.loads(p.stdout)["nodes"][0]
        assert row["result"] == "changed" and row["strategy"] == "single", row
        # slice waited for the MIG devices: 7 per GPU, all allocatable
        assert row["resource"] == "nvidia.com/gpu" and row["after"] == 7 * n, row
        assert kr.gpus(MIG_NODE, "capacity") == 7 * n
        labels = kr.node(MIG_NODE)["metadata"]["labels"]
        assert labels.get("nvidia.com/mig.strategy") == "single", labels
        assert labels.get("nvidia.com/gpu.product") == "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb", labels
        log = kr.exec(MIG_NODE, "sh", "-c",
                      "cat /var/log/pods/nvidia-device-plugin_*/nvidia-device-plugin-ctr/*.log")
        assert "missing MIG GPU instance capability path" not in log.split("migStrategy")[-1], log[-3000:]

        # a pod given one MIG device sees exactly it, under its GPU
        kr.pod("mig-a", MIG_NODE)
        kr.wait("the MIG pod to complete", lambda: kr.phase("mig-a") == "Succeeded", 90)
        out = kr.logs("mig-a")
        seen = [l.split("UUID: ")[1].rstrip(")") for l in out.splitlines() if "(UUID: MIG-" in l]
        assert len(seen) == 1 and seen[0] in migs and migs[seen[0]][1] == "1g.10gb", out
        gpu = uuids(out)
        have = uuids(kr.exec(MIG_NODE, "nvidia-smi", "-L"))
        assert gpu == [have[migs[seen[0]][0]]], (out, have)
        kr.delete_pods()

        # gpu-type stays the GPU's, not GFD's -MIG-1g.10gb product
        kr.gpuctl("label", MIG_NODE)
        assert kr.node(MIG_NODE)["metadata"]["labels"].get("gpu-type") == "NVIDIA-H100-80GB-HBM3"

        rows = _smoke_rows(kr, MIG_NODE, 0)
        assert rows["smoke.gpu"]["status"] == "pass", rows["smoke.gpu"]
        c = rows["smoke.mig"]
        assert c["status"] == "pass" and c["message"].startswith(f"MIG single: nvidia.com/gpu {7 * n}"), c

        # mixed: one MIG device of each of three profiles on every GPU
        _mig_layout(kr, "3g.40gb,2g.20gb,1g.10gb")
        p = kr.gpuctl("slice", "mig", "--mig-strategy", "mixed", MIG_NODE, "-o", "json", "--timeout", "2m")
        row = json.loads(p.stdout)["nodes"][0]
        assert row["result"] == "changed" and row["strategy"] == "mixed", row
        profiles = ("3g.40gb", "2g.20gb", "1g.10gb")

        def per_profile():
            st = kr.node(MIG_NODE)["status"]
            return all(st["capacity"].get("nvidia.com/mig-" + p) == str(n) and
                       st["allocatable"].get("nvidia.com/mig-" + p) == str(n) for p in profiles)
        kr.wait("the plugin to advertise 2 of each MIG profile", per_profile, 60)
        assert kr.node(MIG_NODE)["metadata"]["labels"].get("nvidia.com/mig.strategy") == "mixed"
        rows = _smoke_rows(kr, MIG_NODE, 0)
        assert rows["smoke.gpu"]["status"] == "pass", rows["smoke.gpu"]
        c = rows["smoke.mig"]
        assert c["status"] == "pass" and c["message"].startswith("MIG mixed: "), c
        for p in profiles:
            assert f"nvidia.com/mig-{p} {n}" in c["message"], c
    finally:
        was.restore()


def test_smoke_mig_fails_when_the_single_strategy_meets_mixed_mig_devices(kr):
    """A real MIG misconfiguration: the single strategy on GPUs whose MIG devices are
    not all of one profile. The real plugin refuses to start ("invalid MIG
    configuration"), the real GFD labels the product -MIG-INVALID with count 0,
    so nothing is allocatable: slice says the node is not as asked, and
    smoke-test fails smoke.mig with its message and hint, exit 1."""
    was = _MigNode(kr)
    try:
        _mig_layout(kr, "3g.40gb,2g.20gb,1g.10gb")
        p = kr.gpuctl("slice", "mig", "--mig-strategy", "single", MIG_NODE, "-o", "json", "--timeout", "40s",
                      check=None)
        assert p.returncode != 0, (p.stdout, p.stderr)
        kr.wait("GFD to label the layout invalid", lambda: kr.node(MIG_NODE)["metadata"]["labels"].get(
            "nvidia.com/gpu.product") == "NVIDIA-H100-80GB-HBM3-MIG-INVALID", 60)
        rows = _smoke_rows(kr, MIG_NODE, 1)
        c = rows["smoke.mig"]
        assert c["status"] == "fail", c
        assert c["message"] == ("the single MIG strategy found MIG devices of more than one profile, a GPU in "
                                "MIG mode without MIG devices, or MIG on only some GPUs "
                                "(nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3-MIG-INVALID)"), c
        assert "--mig-strategy mixed" in c["hint"], c
    finally:
        was.restore()


def _plugin_pods(kr):
    """node -> (image, ready) of the device plugin's pods."""
    items = json.loads(kr.kubectl("get", "pods", "-n", NS, "-l", "app.kubernetes.io/name=nvidia-device-plugin",
                                  "-o", "json").stdout)["items"]
    out = {}
    for p in items:
        if p["metadata"].get("deletionTimestamp"):
            continue
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
        out[p["spec"].get("nodeName")] = (p["spec"]["containers"][0]["image"], ready)
    return out


def test_the_seeds_plugin_v0_17_2_runs_and_slices_on_real_nodes(kr):
    """The version the seeds pin, built from its Go module like the default: deploy
    --plugin-version v0.17.2 rolls the DaemonSet over to it (the real controller
    replaces each pod), the v0.17.2 plugin registers with each real kubelet, slice
    changes what it advertises, and validate reads the config it loaded; then
    deploy puts the default version back."""
    inv = kr.env["GPUCTL_RIG_INVENTORY"]
    old = "nvcr.io/nvidia/k8s-device-plugin:v0.17.2"
    try:
        p = kr.gpuctl("deploy", "--skip", "nodes", *NODES, "--plugin-version", "v0.17.2", "-o", "json",
                      "--timeout", "3m")
        objs = {(o["kind"], o["name"]): o for o in json.loads(p.stdout)["objects"]}
        ds = objs[("DaemonSet", "nvidia-device-plugin")]
        assert ds["result"] == "configured" and ds["ready"] is True, ds
        pods = _plugin_pods(kr)
        assert all(pods.get(n) == (old, True) for n in NODES), pods
        kr.gpuctl("slice", "--replicas", "8", NODES[0], "--timeout", "2m")
        kr.gpuctl("slice", "--replicas", "2", NODES[1], "--timeout", "2m")
        kr.wait("v0.17.2 to advertise 1 x 8 and 2 x 2", lambda: kr.gpus(NODES[0]) == 8 and kr.gpus(NODES[1]) == 4, 120)
        log = kr.exec(NODES[0], "sh", "-c", "cat /var/log/pods/nvidia-device-plugin_*/nvidia-device-plugin-ctr/*.log")
        assert "Registered device plugin for 'nvidia.com/gpu' with Kubelet" in log
        p = kr.gpuctl("validate", *NODES, "--inventory", inv, "-o", "json", check=0)
        res = _checks(json.loads(p.stdout))
        assert res[(NODES[0], "node.plugin-config")]["message"] == 'the device plugin loaded config "ts-8"', res
        assert res[(NODES[1], "node.plugin-config")]["message"] == 'the device plugin loaded config "ts-2"', res
        for n in NODES:
            assert res[(n, "node.device-plugin")]["status"] == "pass", res[(n, "node.device-plugin")]
    finally:
        p = kr.gpuctl("deploy", "--skip", "nodes", *NODES, "-o", "json", "--timeout", "3m", check=None)
    assert p.returncode == 0, p.stderr
    pods = _plugin_pods(kr)
    assert all(pods.get(n, ("",))[0] == "nvcr.io/nvidia/k8s-device-plugin:v0.19.3" for n in NODES), pods
    # deploy returned when the DaemonSet was ready on every node; a plugin pod may
    # still restart one container once right after (seen in two runs of the module, cause
    # not found yet: the diagnostics print its previous run): ready again soon
    kr.wait("the v0.19.3 plugin pods to be ready", lambda: all(
        _plugin_pods(kr).get(n) == ("nvcr.io/nvidia/k8s-device-plugin:v0.19.3", True) for n in NODES), 90)


def test_dcgm_exporter_runs_and_validate_reads_its_metrics_through_the_api_server(kr):
    """deploy --with dcgm-exporter: the exporter's DaemonSet runs on each real node (the
    rig's stand-in under the pinned image name: the real one needs DCGM and a GPU), each
    pod answers /metrics through the API server (pods/proxy, as Prometheus' targets and
    validate read it) with its own node's GPUs, and validate's cluster.dcgm-exporter
    passes, naming the validated node it read (the failures: test_deploy_cluster.py)."""
    p = kr.gpuctl("deploy", "--skip", "nodes", *NODES, "--with", "gfd,dcgm-exporter", "-o", "json",
                  "--timeout", "3m")
    objs = {(o["kind"], o["name"]): o for o in json.loads(p.stdout)["objects"]}
    assert objs[("DaemonSet", "dcgm-exporter")]["ready"] is True, objs[("DaemonSet", "dcgm-exporter")]
    assert ("Service", "dcgm-exporter") in objs, sorted(objs)

    def exporters():
        pods = json.loads(kr.kubectl("get", "pods", "-n", NS, "-l", "app.kubernetes.io/name=dcgm-exporter",
                                     "-o", "json").stdout)["items"]
        return {q["spec"].get("nodeName"): q for q in pods}
    on = exporters()
    for n in NODES:
        pod = on[n]["metadata"]["name"]
        text = kr.kubectl("get", "--raw", f"/api/v1/namespaces/{NS}/pods/{pod}:9400/proxy/metrics").stdout
        uuids = kr.exec(n, "nvidia-smi", "--query-gpu=uuid", "--format=csv,noheader").split()
        assert len(uuids) == GPUS[n], uuids
        for u in uuids:
            assert f'UUID="{u}"' in text, (n, u, text[:2000])
        assert text.count("DCGM_FI_DEV_GPU_UTIL{") == GPUS[n], text[:2000]
        assert "# TYPE DCGM_FI_DEV_FB_USED gauge" in text

    p = kr.gpuctl("validate", *NODES, "--only", "cluster", "-o", "json", check=None)
    c = _checks(json.loads(p.stdout))[("cluster", "cluster.dcgm-exporter")]
    assert c["status"] == "pass", c
    assert f"{NS}/dcgm-exporter ready on" in c["message"] and "metrics answer on kubelet-gpu-node-" in c["message"], c

    # the pod read is one on the node being validated, whichever node that is
    for n in NODES:
        p = kr.gpuctl("validate", n, "--only", "cluster", "-o", "json", check=None)
        c = _checks(json.loads(p.stdout))[("cluster", "cluster.dcgm-exporter")]
        assert c["status"] == "pass" and c["message"].endswith(f"metrics answer on {n}"), c


OPERATOR_NS = "gpu-operator"
OPERATOR_FIXTURE = os.path.join(ROOT, "tests/fixtures/operator/device-plugin.yaml")
POLICY_CRD = os.path.join(ROOT, "tests/fixtures/crds/nvidia.com_clusterpolicies.yaml")
# what the operator-validator writes on a node whose driver and toolkit are the host's
DRIVER_READY = ("IS_HOST_DRIVER=true\nNVIDIA_DRIVER_ROOT=/\nDRIVER_ROOT_CTR_PATH=/host\n"
                "NVIDIA_DEV_ROOT=/\nDEV_ROOT_CTR_PATH=/host\n")


def _operator_pods(kr):
    items = json.loads(kr.kubectl("get", "pods", "-n", OPERATOR_NS, "-l", "app=nvidia-device-plugin-daemonset",
                                  "-o", "json").stdout)["items"]
    return {p["spec"].get("nodeName"): p for p in items if not p["metadata"].get("deletionTimestamp")}


def _ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def test_operator_mode_slices_the_operators_own_plugin_on_real_nodes(kr):
    """GPU Operator mode on real nodes, against the real ClusterPolicy CRD: gpuctl's own
    stack is taken off (one device plugin at a time), a ClusterPolicy exists, and deploy
    deploys no plugin but points the policy's devicePlugin.config at gpuctl's ConfigMap
    in the operator's namespace. The test then does the operator controller's part (it
    cannot run here: it would install a driver and a toolkit): it renders the operator's
    device plugin DaemonSet for that policy (tests/fixtures/operator) and applies it,
    the real plugin and config-manager run from it. slice then changes the operator's
    plugin on each node (the ConfigMap, the node's config label, the operator's pods
    restarted as the operator does not watch its ConfigMap) and waits for capacity;
    validate reads the operator's plugin and the config it loaded; cleanup puts the
    policy back. At the end the operator is uninstalled and gpuctl's flow restored."""
    inv = kr.env["GPUCTL_RIG_INVENTORY"]
    p = kr.gpuctl("cleanup", "--skip", "nodes", *NODES, "-o", "json", "--timeout", "3m")
    kr.wait("gpuctl's device plugin pods to be gone", lambda: not _plugin_pods(kr), 120)
    kr.kubectl("apply", "-f", POLICY_CRD)
    kr.wait("the ClusterPolicy CRD to be established", lambda: any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in json.loads(kr.kubectl("get", "crd", "clusterpolicies.nvidia.com", "-o", "json").stdout)
        .get("status", {}).get("conditions") or []), 60)
    kr.kubectl("create", "namespace", OPERATOR_NS)
    policy = {"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy", "metadata": {"name": "cluster-policy"},
              "spec": {"devicePlugin": {"enabled": True}, "daemonsets": {}, "dcgm": {}, "dcgmExporter": {},
                       "driver": {"enabled": False}, "gfd": {}, "nodeStatusExporter": {}, "operator": {},
                       "toolkit": {"enabled": False}}}
    kr.wait("the ClusterPolicy to be accepted", lambda: kr.kubectl(
        "apply", "-f", "-", input=json.dumps(policy), check=False).returncode == 0, 30)
    try:
        for n in NODES:  # the operator's labeller and validator
            kr.kubectl("label", "node", n, "--overwrite", "nvidia.com/gpu.deploy.device-plugin=true")
            kr.exec(n, "sh", "-c", "mkdir -p /run/nvidia/validations /run/nvidia/mps/shm && "
                    f"printf '{DRIVER_READY}' >/run/nvidia/validations/driver-ready && "
                    "touch /run/nvidia/validations/toolkit-ready")

        p = kr.gpuctl("deploy", "--skip", "nodes", *NODES, "-o", "json", "--timeout", "3m")
        objs = {(o["kind"], o["name"]): o for o in json.loads(p.stdout)["objects"]}
        assert objs[("ClusterPolicy", "cluster-policy")]["result"] == "configured", objs
        assert objs[("ConfigMap", "nvidia-device-plugin-configs")]["namespace"] == OPERATOR_NS, objs
        assert ("DaemonSet", "nvidia-device-plugin") not in objs, "a plugin of gpuctl's own beside the operator's"
        got = json.loads(kr.kubectl("get", "clusterpolicy", "cluster-policy", "-o", "json").stdout)
        cfg = got["spec"]["devicePlugin"]["config"]
        assert cfg == {"name": "nvidia-device-plugin-configs", "default": "any"}, cfg

        # the operator controller's part: its DaemonSet for this policy
        text = open(OPERATOR_FIXTURE).read()
        for k, v in (("@CONFIG_NAME@", cfg["name"]), ("@DEFAULT_CONFIG@", cfg["default"]),
                     ("@PLUGIN_IMAGE@", "nvcr.io/nvidia/k8s-device-plugin:v0.19.3"),
                     ("@VALIDATOR_IMAGE@", "localhost/gpuctl-rig/busybox:1")):
            text = text.replace(k, v)
        kr.kubectl("apply", "-f", "-", input=text)
        if kr.kubectl("get", "runtimeclass", "nvidia", check=False).returncode != 0:
            kr.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                                                              "metadata": {"name": "nvidia"}, "handler": "nvidia"}))
        try:
            kr.wait("the operator's device plugin to run on both nodes",
                    lambda: all(n in _operator_pods(kr) and _ready(_operator_pods(kr)[n]) for n in NODES), 180)
        except AssertionError:
            print(kr.kubectl("describe", "pods", "-n", OPERATOR_NS, check=False).stdout)
            for n in NODES:
                print(subprocess.run([os.path.join(ROOT, "tests/rig/exec"), n, "--", "sh", "-c",
                                      "tail -n 20 /var/log/pods/gpu-operator_*/*/*.log"],
                                     capture_output=True, text=True, timeout=60).stdout)
            raise
        kr.wait("the operator's plugin to advertise the GPUs",
                lambda: all(kr.gpus(n) == GPUS[n] for n in NODES), 120)

        # slice through the operator: per node, and the plugin pods restarted by gpuctl
        before = {n: _operator_pods(kr)[n]["metadata"]["uid"] for n in NODES}
        p = kr.gpuctl("slice", "--replicas", "4", NODES[0], "-o", "json", "--timeout", "3m")
        doc = json.loads(p.stdout)
        assert doc.get("operator") is True, doc
        assert kr.gpus(NODES[0]) == 4 * GPUS[NODES[0]], kr.node(NODES[0])["status"]["allocatable"]
        cm = json.loads(kr.kubectl("get", "configmap", "-n", OPERATOR_NS, cfg["name"], "-o", "json").stdout)
        key = kr.node(NODES[0])["metadata"]["labels"]["nvidia.com/device-plugin.config"]
        assert "replicas: 4" in cm["data"][key], cm["data"]
        assert _operator_pods(kr)[NODES[0]]["metadata"]["uid"] != before[NODES[0]], "the operator's pod was not restarted"
        kr.gpuctl("slice", "--replicas", "2", NODES[1], "--timeout", "3m")
        assert kr.gpus(NODES[1]) == 2 * GPUS[NODES[1]]
        assert kr.gpus(NODES[0]) == 4 * GPUS[NODES[0]], "slicing one node changed another"

        # validate reads the operator's plugin and what it loaded on each node
        p = kr.gpuctl("validate", *NODES, "--inventory", inv, "-o", "json", check=None)
        res = _checks(json.loads(p.stdout))
        c = res[("cluster", "cluster.device-plugin")]
        assert c["status"] == "pass" and f"{OPERATOR_NS}/nvidia-device-plugin-daemonset" in c["message"], c
        assert res[("cluster", "cluster.conflicts")]["status"] == "pass", res[("cluster", "cluster.conflicts")]
        for n, want in ((NODES[0], "ts-4"), (NODES[1], "ts-2")):
            assert res[(n, "node.plugin-config")]["message"] == f'the device plugin loaded config "{want}"', \
                res[(n, "node.plugin-config")]
            assert res[(n, "node.sharing")]["status"] == "pass", res[(n, "node.sharing")]

        kr.gpuctl("slice", "none", *NODES, "--timeout", "3m")
        assert all(kr.gpus(n) == GPUS[n] for n in NODES)

        # cleanup: the policy as it was, gpuctl's ConfigMap gone, the operator's objects untouched
        p = kr.gpuctl("cleanup", "--skip", "nodes", *NODES, "-o", "json", "--timeout", "3m")
        assert "put back" in p.stdout, p.stdout
        got = json.loads(kr.kubectl("get", "clusterpolicy", "cluster-policy", "-o", "json").stdout)
        assert "config" not in got["spec"]["devicePlugin"], got["spec"]["devicePlugin"]
        assert kr.kubectl("get", "configmap", "-n", OPERATOR_NS, cfg["name"], check=False).returncode != 0
        assert kr.kubectl("get", "daemonset", "-n", OPERATOR_NS, "nvidia-device-plugin-daemonset",
                          check=False).returncode == 0, "cleanup deleted the operator's DaemonSet"
    finally:
        # the operator uninstalled, then gpuctl's flow again (the last test takes it back)
        kr.kubectl("delete", "clusterpolicy", "cluster-policy", "--ignore-not-found", check=False)
        kr.kubectl("delete", "namespace", OPERATOR_NS, "--ignore-not-found", "--wait=true", "--timeout=120s",
                   check=False)
        kr.kubectl("delete", "clusterrole,clusterrolebinding", "nvidia-device-plugin", "--ignore-not-found",
                   check=False)
        kr.kubectl("delete", "crd", "clusterpolicies.nvidia.com", "--ignore-not-found", check=False)
        for n in NODES:
            kr.kubectl("label", "node", n, "nvidia.com/gpu.deploy.device-plugin-", check=False)
            kr.exec(n, "rm", "-rf", "/run/nvidia/validations")
        rc = json.loads(kr.kubectl("get", "runtimeclass", "nvidia", "-o", "json", check=False).stdout or "{}")
        if rc and rc["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") != "gpuctl":
            kr.kubectl("delete", "runtimeclass", "nvidia", check=False)
    kr.gpuctl("label", *NODES)
    kr.gpuctl("taint", *NODES)
    kr.gpuctl("deploy", "--skip", "nodes", *NODES, "--timeout", "3m")
    kr.wait("gpuctl's plugin to advertise the GPUs again", lambda: all(kr.gpus(n) == GPUS[n] for n in NODES), 120)


def test_cleanup_puts_the_nodes_back(kr):
    """The end of the flow: cleanup, then validate again and direct reads show
    every node and the cluster as they were before the first gpuctl command."""
    inv = kr.env["GPUCTL_RIG_INVENTORY"]
    original = {n: kr.exec(n, "cat", "/usr/local/share/gpuctl-rig/original/config.toml") for n in NODES}
    # the flow did change them: otherwise "back as before" would prove nothing
    for n in NODES:
        now = kr.state(n)
        assert now["containerd-file"] != kr.before[n]["containerd-file"] or now["dropin"] == "present", now
        assert now["labels"] != kr.before[n]["labels"] and now["taints"] != kr.before[n]["taints"], now
    assert kr.owned(), "the flow created nothing gpuctl owns?"

    p = kr.gpuctl("cleanup", *NODES, "--inventory", inv, "--timeout", "3m", "-o", "json")
    doc = json.loads(p.stdout)
    assert doc["kind"] == "CleanupResult", doc
    assert not [x for x in doc["results"] if x["status"] == "failed"], doc["results"]

    # GFD's NodeFeature objects (in gpuctl's namespace, owned by GFD's DaemonSet) are gone
    # when cleanup returns; nfd-master, still running as on a user's cluster, then takes
    # the labels it had put on the nodes from them off again (it removes the labels its
    # annotation names when a node has no NodeFeature left): cleanup does not touch them
    if kr.kubectl("get", "crd", "nodefeatures.nfd.k8s-sigs.io", check=False).returncode == 0:
        left = kr.kubectl("get", "nodefeatures.nfd.k8s-sigs.io", "-A", "-o", "name").stdout
        assert left.strip() == "", left
        kr.wait("nfd-master to take GFD's labels off the nodes",
                lambda: all(not [k for k in kr.node(n)["metadata"]["labels"] if k not in kr.before[n]["labels"]
                                 and k.startswith("nvidia.com/") and k != "nvidia.com/device-plugin.config"]
                            for n in NODES), 60)

    # validate again: the nodes read as never prepared, and it says so by check id
    # (nvidia.com/gpu capacity is the kubelet's: it keeps the plugin's last count with
    # 0 allocatable, then 0, after the plugin is gone, so node.gpu-resource/gpu-health
    # depend on timing and are not judged here)
    p = kr.gpuctl("validate", *NODES, "--inventory", inv, "-o", "json", check=1)
    res = _checks(json.loads(p.stdout))
    want = {("cluster", "cluster.runtimeclass"): ("fail", "RuntimeClass nvidia does not exist"),
            ("cluster", "cluster.device-plugin"): ("fail", "no NVIDIA device plugin DaemonSet in any namespace"),
            ("cluster", "cluster.conflicts"): ("pass", "no device plugin")}
    for n in NODES:
        want.update({(n, "node.labels"): ("warn", "missing: accelerator=nvidia"),
                     (n, "node.taints"): ("warn", "missing: nvidia.com/gpu=true:NoSchedule"),
                     (n, "node.device-plugin"): ("skip", "skipped: no device plugin is deployed"),
                     (n, "node.sharing"): ("skip", "skipped: no device plugin is deployed"),
                     (n, "node.plugin-config"): ("skip", "skipped: no device plugin pod with sharing configurations"),
                     (n, "node.nvidia-runtime"): ("fail", "containerd has no nvidia runtime"),
                     (n, "node.compute-mode"): ("pass", f"DEFAULT on {GPUS[n]} GPU"),
                     (n, "node.containerd"): ("pass", "containerd 1.6.20 (containerd1, config version 2) running")})
    for key, (status, message) in want.items():
        assert (res[key]["status"], res[key]["message"][:len(message)]) == (status, message), res[key]

    # direct reads: the rig's files and the API
    for n in NODES:
        after, before = kr.state(n), kr.before[n]
        assert after["containerd"] == before["containerd"] == original[n], f"{n}: {CONF} is not as before"
        assert after["containerd-file"] == before["containerd-file"], (n, after["containerd-file"], before)
        assert after["dropin"] == before["dropin"] == "absent", (n, after["dropin"])
        assert after["labels"] == before["labels"], (n, after["labels"], before["labels"])
        assert after["taints"] == before["taints"], (n, after["taints"], before["taints"])
        ann = kr.node(n)["metadata"].get("annotations", {})
        assert not [a for a in ann if a.startswith("gpuctl.io/")], (n, ann)
    assert kr.owned() == [], "objects gpuctl created are left"
    for what in (("namespace", NS), ("namespace", "gpuctl-smoke-test"), ("runtimeclass", "nvidia"),
                 ("clusterrole", "nvidia-device-plugin-role")):
        assert kr.kubectl("get", *what, check=False).returncode != 0, f"{what} is left"

    # a second cleanup finds nothing to do
    p = kr.gpuctl("cleanup", *NODES, "--inventory", inv, "--timeout", "3m", "-o", "json")
    doc = json.loads(p.stdout)
    assert all(x["status"] in ("unchanged", "skipped") for x in doc["results"]), doc["results"]
