"""gpuctl validate against the local cluster and the SSH rig: every check's
result for healthy, faulty, containerd 2 and k3s nodes; JSON and JUnit; read-only."""
import json
import os
import subprocess
import xml.etree.ElementTree as ET

from conftest import ROOT, assert_junit_schema


def validate(r, *args, check=None, env=None):
    return r.deploy(*args, check=check, env=env, command="validate")


def results(r, *args, check=None):
    p = validate(r, "-o", "json", *args, check=check)
    doc = json.loads(p.stdout)
    assert doc["kind"] == "ValidationResult" and doc["apiVersion"] == "gpuctl.io/v1alpha1"
    return {(c["target"], c["id"]): c for c in doc["checks"]}, doc, p


NODE_CHECKS = ["node.ready", "node.gpu-resource", "node.gpu-health", "node.ssh", "node.driver", "node.gpus",
               "node.product", "node.compute-mode", "node.kernel-modules", "node.containerd", "node.toolkit",
               "node.nvidia-runtime"]
# checks per GPU node: through the API, then over SSH
API_NODE_CHECKS = 7
SSH_NODE_CHECKS = 10


def test_healthy_and_faulty_nodes(r):
    ready = ["gpu-node-1", "containerd2-gpu-node", "k3s-gpu-node", "rke2-gpu-node"]
    r.reset(*ready, "gpu-node-2")
    r.deploy(*ready, check=0)  # the nodes, and the RuntimeClass nvidia
    faulty = ["fault-old-driver", "fault-broken-driver", "fault-bad-config", "fault-unknown-hostkey"]
    r.kubectl("label", "node", "gpu-node-2", "--overwrite", "nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB")
    try:
        res, doc, p = results(r, "--ssh-timeout", "10", *ready, "gpu-node-2", *faulty, check=1)
    finally:
        r.kubectl("label", "node", "gpu-node-2", "--overwrite", "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3")
    st = {k: v["status"] for k, v in res.items()}
    assert st[("cluster", "cluster.api")] == "pass" and res[("cluster", "cluster.api")]["message"].startswith("Kubernetes v1.")
    assert res[("cluster", "cluster.gpu-nodes")]["message"] == "9 GPU nodes"
    # a stale product label (set below: gpu-node-2 says A100, the rig node behind it replays
    # an H100), found by comparing with nvidia-smi
    prod = res[("gpu-node-2", "node.product")]
    assert prod["status"] == "fail", prod
    assert prod["message"] == ("the node's label nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB, "
                               "but nvidia-smi reports NVIDIA H100 80GB HBM3"), prod
    assert "gpu-feature-discovery" in prod["hint"]
    assert res[("gpu-node-1", "node.product")]["message"] == "NVIDIA-H100-80GB-HBM3 (nvidia-smi: NVIDIA H100 80GB HBM3)"
    assert res[("gpu-node-1", "node.compute-mode")]["message"] == "DEFAULT on 1 GPU"
    for n in ready:
        for c in NODE_CHECKS:
            assert st[(n, c)] == "pass", (n, c, res[(n, c)])
    assert "containerd 2." in res[("containerd2-gpu-node", "node.containerd")]["message"]
    assert "config version 3" in res[("containerd2-gpu-node", "node.containerd")]["message"]
    assert "(k3s," in res[("k3s-gpu-node", "node.containerd")]["message"]
    assert "(rke2," in res[("rke2-gpu-node", "node.containerd")]["message"]
    assert res[("gpu-node-2", "node.gpus")]["message"] == "4 x NVIDIA H100 80GB HBM3; MIG off"
    assert res[("gpu-node-1", "node.driver")]["message"] == "driver 580.159.04, CUDA 13.0 (minimum 470)"
    # a node not prepared yet: everything but the runtime passes, and the hint says how to fix it
    assert st[("gpu-node-2", "node.nvidia-runtime")] == "fail"
    assert "gpuctl deploy" in res[("gpu-node-2", "node.nvidia-runtime")]["hint"]
    assert st[("fault-old-driver", "node.driver")] == "fail"
    assert "450.248.02 is older than the minimum 470" in res[("fault-old-driver", "node.driver")]["message"]
    assert st[("fault-broken-driver", "node.driver")] == "fail"
    assert "NVIDIA-SMI has failed" in res[("fault-broken-driver", "node.driver")]["message"]
    assert st[("fault-bad-config", "node.containerd")] == "fail"
    assert "cannot read its configuration" in res[("fault-bad-config", "node.containerd")]["message"]
    assert st[("fault-bad-config", "node.nvidia-runtime")] == "skip"
    ssh = res[("fault-unknown-hostkey", "node.ssh")]
    assert ssh["status"] == "fail" and "unknown host key" in ssh["message"] and "SHA256:" in ssh["message"]
    assert "--ssh-accept-new" in ssh["hint"]
    for c in NODE_CHECKS[4:]:
        assert st[("fault-unknown-hostkey", c)] == "skip"
    s = doc["summary"]
    assert s["total"] == len(doc["checks"]) == 6 + 9 * (API_NODE_CHECKS + SSH_NODE_CHECKS)
    assert s["failed"] == sum(1 for v in st.values() if v == "fail") and doc["ok"] is False
    # the table says the same, with hints (the node checks: the kwok cluster has no device plugin)
    p = validate(r, "--only", "nodes", *ready, check=0)
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["CHECK", "TARGET", "RESULT", "MESSAGE"]
    n = SSH_NODE_CHECKS * 4
    # node.plugin-config is skipped: no device plugin pod runs on these (kwok) nodes' rig nodes
    assert lines[-1] == f"{n} checks: {n - 4} passed, 0 warnings, 0 failed, 4 skipped"
    assert sum(1 for l in lines if l.split()[:1] == ["node.plugin-config"] and l.split()[2] == "skip") == 4


def test_junit_report(r, tmp_path):
    out = tmp_path / "validate.xml"
    res, doc, p = results(r, "--junit", str(out), "gpu-node-1", "fault-old-driver", check=1)
    assert_junit_schema(out)
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    assert int(root.get("tests")) == doc["summary"]["total"]
    assert int(root.get("failures")) == doc["summary"]["failed"] >= 1
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"cluster", "node/gpu-node-1", "node/fault-old-driver"}
    cases = {c.get("name"): c for c in suites["node/fault-old-driver"].findall("testcase")}
    f = cases["node.driver"].find("failure")
    assert f is not None and "older than the minimum 470" in f.get("message")
    assert cases["node.ssh"].find("failure") is None
    # -o junit on stdout: the same document
    p = validate(r, "-o", "junit", "gpu-node-1", "fault-old-driver", check=1)
    assert ET.fromstring(p.stdout).get("tests") == root.get("tests")


def test_minimum_driver_is_configurable(r):
    res, _, _ = results(r, "--only", "nodes", "--min-driver", "590", "gpu-node-1", check=1)
    assert res[("gpu-node-1", "node.driver")]["status"] == "fail"
    assert "older than the minimum 590" in res[("gpu-node-1", "node.driver")]["message"]
    assert ("cluster", "cluster.api") not in res, "--only nodes skips the cluster group"
    res, _, _ = results(r, "--only", "cluster", "gpu-node-1", check=0)
    assert ("gpu-node-1", "node.ssh") not in res and res[("gpu-node-1", "node.ready")]["status"] == "pass"


def test_validate_changes_nothing(r):
    r.reset("gpu-node-3")
    before = r.sha("gpu-node-3")
    pid = r.containerd_pid("gpu-node-3")
    validate(r, "gpu-node-3", check=1)
    assert r.sha("gpu-node-3") == before and r.containerd_pid("gpu-node-3") == pid
    assert r.exec("gpu-node-3", "test", "-e", "/etc/containerd/conf.d", check=False).returncode != 0


def test_cgroup_driver_mismatch_is_a_warning(r):
    """A hand-made nvidia runtime without the SystemdCgroup that runc has: pods with it
    would fail under a systemd-cgroup kubelet. validate warns (exit 0)."""
    r.reset("gpu-node-1")
    cfg = ('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "localhost/gpuctl-rig/pause:1"\n'
           '  restrict_oom_score_adj = true\n'
           '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n  runtime_type = "io.containerd.runc.v2"\n'
           '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n  SystemdCgroup = true\n'
           '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\n  runtime_type = "io.containerd.runc.v2"\n'
           '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]\n'
           '  BinaryName = "/usr/local/bin/nvidia-container-runtime"\n')
    subprocess.run([os.path.join(ROOT, "tests/rig/exec"), "gpu-node-1", "--", "sh", "-c",
                    "cat > /etc/containerd/config.toml && systemctl restart containerd"],
                   input=cfg, text=True, check=True, capture_output=True)
    res, _, _ = results(r, "--only", "nodes", "gpu-node-1", check=0)
    c = res[("gpu-node-1", "node.nvidia-runtime")]
    assert c["status"] == "warn", c
    assert "SystemdCgroup = false but runc has true" in c["message"] and "systemd cgroup driver" in c["hint"]


def test_unreachable_cluster_still_writes_a_report(r, tmp_path):
    kc = tmp_path / "kubeconfig"
    kc.write_text("apiVersion: v1\nkind: Config\ncurrent-context: x\n"
                  "clusters: [{name: x, cluster: {server: 'https://127.0.0.1:9', insecure-skip-tls-verify: true}}]\n"
                  "contexts: [{name: x, context: {cluster: x, user: x}}]\nusers: [{name: x, user: {token: t}}]\n")
    out = tmp_path / "v.xml"
    p = validate(r, "--junit", str(out), "--request-timeout", "2s", env={"KUBECONFIG": str(kc)}, check=3)
    assert_junit_schema(out)
    assert "127.0.0.1:9" in p.stderr
    root = ET.parse(out).getroot()
    f = root.find("testsuite/testcase[@name='cluster.api']/failure")
    assert f is not None and root.get("failures") == "1"


def test_list_and_usage(r):
    p = validate(r, "--list", check=0)
    ids = [l.split()[0] for l in p.stdout.splitlines()[1:]]
    assert ids[:3] == ["cluster.api", "cluster.gpu-nodes", "cluster.runtimeclass"] and "node.nvidia-runtime" in ids
    p = validate(r, "--only", "gpus", check=2)
    assert 'unknown group "gpus"' in p.stderr
    validate(r, "-o", "name", check=2)
    p = validate(r, "--skip", "cluster", "--skip", "nodes", check=2)
    assert "nothing to check" in p.stderr
    validate(r, "--junit", "-", "-o", "json", check=2)


def test_missing_node_is_a_failed_check_not_an_api_failure(r):
    res, doc, p = results(r, "no-such-node", check=1)
    assert res[("cluster", "cluster.api")]["status"] == "pass"
    c = res[("cluster", "cluster.gpu-nodes")]
    assert c["status"] == "fail" and "no-such-node" in c["message"] and len(doc["checks"]) == 2


def kubectl_of(r):
    """The cluster's kubectl, from the rig's record of the cluster's exports."""
    if "KUBECTL" in r.env:
        return r.env["KUBECTL"]
    for line in open(os.path.join(r.env["GPUCTL_RIG_DIR"], "cluster.env")):
        if line.startswith("export KUBECTL="):
            return line.split("=", 1)[1].strip().strip("'\"")
    raise AssertionError("no KUBECTL in the rig's cluster.env")


def taints_of(r, node):
    p = subprocess.run([kubectl_of(r), "get", "node", node, "-o", "json"], capture_output=True,
                       text=True, env=dict(os.environ, KUBECONFIG=r.env["KUBECONFIG"]), check=True)
    return {(t["key"], t["effect"]) for t in json.loads(p.stdout)["spec"].get("taints", [])}


def taint(r, *args, check=0):
    p = subprocess.run([r.bin, "taint", *args], capture_output=True, text=True,
                       env=dict(os.environ, KUBECONFIG=r.env["KUBECONFIG"], NO_COLOR="1", HOME=r.tmp), timeout=120)
    assert p.returncode == check, f"gpuctl taint {args}: exit {p.returncode}\n{p.stderr}"
    return p


def test_validation_gate_admits_the_node_that_passes_only(r):
    good, bad = "gpu-node-1", "fault-old-driver"
    r.reset(good)
    r.deploy("--only", "nodes", good, check=0)
    gate = ("gpuctl.io/unvalidated", "NoSchedule")

    def forget_admission():  # new nodes again: no record of an earlier admission
        subprocess.run([kubectl_of(r), "annotate", "node", good, bad, "gpuctl.io/validated-"], check=True,
                       capture_output=True, env=dict(os.environ, KUBECONFIG=r.env["KUBECONFIG"]))
    forget_admission()
    try:
        taint(r, "--until-validated", good, bad)
        assert gate in taints_of(r, good) and gate in taints_of(r, bad)
        # a second taint run changes nothing
        p = taint(r, "--until-validated", good, bad)
        assert "2 node(s): 0 tainted, 2 unchanged" in p.stderr, p.stderr
        p = validate(r, "--admit", "--skip", "cluster", "-o", "json", good, bad, check=1)
        doc = json.loads(p.stdout)
        assert doc["admission"]["admitted"] == [good] and doc["admission"]["kept"] == [bad], doc["admission"]
        assert gate not in taints_of(r, good), "the node that passed keeps the gate"
        assert gate in taints_of(r, bad), "a node that failed lost the gate"
        # an admitted node is not new: the next `taint --until-validated` (in a pipeline) leaves it alone
        p = taint(r, "--until-validated", good, bad)
        assert "0 tainted, 2 unchanged" in p.stderr, p.stderr
        assert gate not in taints_of(r, good)
        # --strict: a warning fails too (gpu-node-1 has none; the exit status stays that of the failures)
        validate(r, "--strict", "--skip", "cluster", good, check=0)
    finally:
        taint(r, "gpuctl.io/unvalidated-", "nvidia.com/gpu-", good, bad)
        forget_admission()


def test_node_faults_each_fail_their_own_check_and_the_hint_fixes_them(r):
    """Faults made on purpose on a prepared node, each named by its check id with
    exit 1: the GFD count label says more GPUs than the driver sees (a GPU fell
    off the bus), a GPU left in EXCLUSIVE_PROCESS (MPS gone, the mode stayed),
    nvidia_uvm not loaded, and the container toolkit removed. Then each fix the
    hints name is applied and validate passes again (exit 0)."""
    n = "gpu-node-1"
    r.reset(n)
    r.deploy(n, check=0)
    res, _, _ = results(r, "--only", "nodes", n, check=0)
    assert all(res[(n, c)]["status"] == "pass" for c in NODE_CHECKS[3:]), res
    count = json.loads(r.kubectl("get", "node", n, "-o", "json").stdout)["metadata"]["labels"].get("nvidia.com/gpu.count")
    mods = "/usr/local/share/nvidia-smi-replay/modules.txt"
    ncr = "/usr/local/bin/nvidia-container-runtime"
    # the rig's kernel has no /proc/modules: the node's lsmod reads the replayed module list
    proc_modules = r.exec(n, "test", "-e", "/proc/modules", check=False).returncode == 0
    r.kubectl("label", "node", n, "--overwrite", "nvidia.com/gpu.count=2")
    try:
        out = r.exec(n, "nvidia-smi", "-c", "EXCLUSIVE_PROCESS").stdout
        assert "Set compute mode to EXCLUSIVE_PROCESS for GPU 00000000:00:06.0." in out, out
        r.exec(n, "sh", "-c", f"cp {mods} {mods}.e2e && grep -v '^nvidia_uvm ' {mods}.e2e > {mods}")
        r.exec(n, "mv", ncr, ncr + ".e2e")
        res, doc, p = results(r, "--only", "nodes", n, check=1)
        c = res[(n, "node.gpus")]
        assert c["status"] == "fail" and c["message"] == (
            "1 x NVIDIA H100 80GB HBM3; MIG off, but the node's label nvidia.com/gpu.count says 2"), c
        assert "fallen off the bus" in c["hint"]
        c = res[(n, "node.compute-mode")]
        assert c["status"] == "fail" and "GPU 0 in compute mode EXCLUSIVE_PROCESS without MPS" in c["message"], c
        assert "nvidia-smi -c DEFAULT" in c["hint"]
        c = res[(n, "node.toolkit")]
        assert c["status"] == "fail" and c["message"] == "nvidia-container-runtime is not installed", c
        assert "install nvidia-container-toolkit" in c["hint"]
        # containerd's nvidia runtime now points at a binary that is gone
        assert res[(n, "node.nvidia-runtime")]["status"] == "fail", res[(n, "node.nvidia-runtime")]
        if not proc_modules:
            c = res[(n, "node.kernel-modules")]
            assert c["status"] == "fail" and c["message"] == "not loaded: nvidia_uvm", c
            assert "modprobe nvidia nvidia_uvm" in c["hint"]
        assert doc["ok"] is False and p.returncode == 1
        # JUnit names the same failures
        p = validate(r, "--only", "nodes", n, "-o", "junit", check=1)
        root = ET.fromstring(p.stdout)
        failed = {c.get("name") for c in root.iter("testcase") if c.find("failure") is not None}
        assert {"node.gpus", "node.compute-mode", "node.toolkit", "node.nvidia-runtime"} <= failed, failed
    finally:
        r.exec(n, "sh", "-c", f"if [ -e {ncr}.e2e ]; then mv {ncr}.e2e {ncr}; fi; "
                              f"if [ -e {mods}.e2e ]; then mv {mods}.e2e {mods}; fi", check=False)
        r.exec(n, "nvidia-smi", "-c", "DEFAULT", check=False)
        r.kubectl("label", "node", n, "--overwrite", f"nvidia.com/gpu.count={count}" if count else "nvidia.com/gpu.count-")
    res, _, _ = results(r, "--only", "nodes", n, check=0)
    assert all(res[(n, c)]["status"] == "pass" for c in NODE_CHECKS[3:]), res
