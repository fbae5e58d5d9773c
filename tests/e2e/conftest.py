"""End-to-end fixtures: the real gpuctl binary against the local control plane.

The cluster comes from tests/cluster/up (started or reused); its exports give
KUBECONFIG (contexts admin, reader, exec), KUBECTL and the server's CA.
"""
import hashlib
import json
import os
import subprocess
import tempfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GPU_NODES = ["gpu-node-1", "gpu-node-2", "gpu-node-3"]
CPU_NODE = "cpu-node-1"
MKNODES_PRODUCTS = {"gpu-node-1": "NVIDIA-H100-80GB-HBM3", "gpu-node-2": "NVIDIA-A100-SXM4-80GB",
                    "gpu-node-3": "NVIDIA-H100-80GB-HBM3"}
# labels and taints the tests add; reset before each test
TEST_LABELS = ["accelerator", "gpu-type", "tier", "team", "e2e", "foo", "x"]


def _exports(text):
    env = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("export ") and "=" in line:
            k, v = line[len("export "):].split("=", 1)
            env[k] = v.strip("'\"")
    return env


def cluster_up(**extra):
    """Start (or reuse) a local cluster with tests/cluster/up; extra: its environment
    variables (GPUCTL_CLUSTER_DIR, GPUCTL_TEST_NODES...). Returns its exports."""
    up = subprocess.run([os.path.join(ROOT, "tests/cluster/up")], capture_output=True, text=True,
                        env=dict(os.environ, **extra))
    if up.returncode != 0:
        raise RuntimeError("tests/cluster/up failed:\n" + up.stderr[-4000:])
    env = _exports(up.stdout)
    assert "KUBECONFIG" in env and "KUBECTL" in env, up.stdout
    return env


def cluster_down(**extra):
    subprocess.run([os.path.join(ROOT, "tests/cluster/down")], capture_output=True, text=True,
                   env=dict(os.environ, **extra))


@pytest.fixture(scope="session")
def cluster():
    return cluster_up()


@pytest.fixture(scope="session")
def gpuctl_bin():
    b = os.environ.get("GPUCTL_BIN", os.path.join(ROOT, "build", "gpuctl"))
    assert os.access(b, os.X_OK), f"gpuctl binary not found at {b} (build first or set GPUCTL_BIN)"
    return b


class Cluster:
    def __init__(self, env, gpuctl_bin, tmp):
        self.env = env
        self.bin = gpuctl_bin
        self.tmp = tmp
        self.kubeconfig = env["KUBECONFIG"]

    def _env(self, extra=None):
        e = dict(os.environ)
        e.update({"KUBECONFIG": self.kubeconfig, "NO_COLOR": "1", "HOME": self.tmp})
        e.pop("GPUCTL_CONFIG", None)
        if extra:
            e.update(extra)
        return e

    def gpuctl(self, *args, env=None, check=None, timeout=120):
        p = subprocess.run([self.bin, *args], capture_output=True, text=True, env=self._env(env),
                           timeout=timeout)
        if check is not None:
            assert p.returncode == check, (
                f"gpuctl {' '.join(args)} exited {p.returncode}, expected {check}\n"
                f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def kubectl(self, *args, check=True, input=None):
        p = subprocess.run([self.env["KUBECTL"], *args], capture_output=True, text=True,
                           env=self._env(), input=input, timeout=120)
        if check:
            assert p.returncode == 0, f"kubectl {' '.join(args)}: {p.stderr}"
        return p

    def node(self, name):
        return json.loads(self.kubectl("get", "node", name, "-o", "json").stdout)

    def labels(self, name):
        return self.node(name)["metadata"].get("labels", {})

    def taints(self, name):
        return self.node(name)["spec"].get("taints", [])

    def rv(self, name):
        return self.node(name)["metadata"]["resourceVersion"]

    def set_taints(self, name, taints):
        patch = json.dumps({"spec": {"taints": taints or None}})
        self.kubectl("patch", "node", name, "--type=merge", "-p", patch)

    def reset(self, nodes=None):
        names = nodes or GPU_NODES + [CPU_NODE]
        self.kubectl("label", "nodes", *names, *[k + "-" for k in TEST_LABELS])
        # the products the local cluster gives its nodes (mknodes); the rig, when up,
        # relabels the ones it stands behind with what their nvidia-smi reports
        for n, product in MKNODES_PRODUCTS.items():
            if n in names:
                self.kubectl("label", "node", n, "--overwrite", "nvidia.com/gpu.product=" + product)
        for n in names:
            if self.taints(n):
                self.set_taints(n, None)

    def create_node(self, name, labels=None, capacity=None):
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": dict(labels or {}, **{"e2e-extra": "true"})},
                "status": {"capacity": capacity or {"cpu": "4", "memory": "8Gi", "pods": "110"},
                           "allocatable": capacity or {"cpu": "4", "memory": "8Gi", "pods": "110"}}}
        self.kubectl("create", "-f", "-", input=json.dumps(node))

    def delete_extra_nodes(self):
        self.kubectl("delete", "nodes", "-l", "e2e-extra=true", "--wait=false", check=False)

    def write_kubeconfig(self, name, mutate):
        """A copy of the cluster's kubeconfig changed by mutate(dict)."""
        cfg = json.loads(self.kubectl("config", "view", "--raw", "-o", "json").stdout)
        mutate(cfg)
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            json.dump(cfg, f)  # JSON is YAML
        return path


@pytest.fixture
def k8s(cluster, gpuctl_bin):
    with tempfile.TemporaryDirectory(prefix="gpuctl-e2e-") as tmp:
        c = Cluster(cluster, gpuctl_bin, tmp)
        c.reset()
        c.delete_extra_nodes()
        yield c
        c.delete_extra_nodes()
        c.reset()


# ---------------------------------------------------------------- the SSH rig (tests/rig)

HEALTHY = ["gpu-node-1", "gpu-node-2", "gpu-node-3"]
FAULTS = ["fault-broken-driver", "fault-old-driver", "fault-unknown-hostkey", "fault-hang",
          "fault-bad-config", "fault-restart-fails"]


def rig_up(reset=None, kubelet=False):
    """The rig with every optional node; with kubelet=True also the real-kubelet
    nodes (test_kubelet.py), which a later rig_up() without it removes again."""
    env = dict(os.environ, GPUCTL_RIG_FAULTS="1", GPUCTL_RIG_K3S="1", GPUCTL_RIG_CTK="1",
               GPUCTL_RIG_CONTAINERD2="1", GPUCTL_RIG_KUBELET="1" if kubelet else "0")
    # the real device plugin in the default version and in the one the seeds pin
    env.setdefault("GPUCTL_RIG_PLUGIN_VERSIONS", "v0.19.3 v0.17.2")
    if reset:
        env["GPUCTL_RIG_RESET"] = " ".join(reset)
    p = subprocess.run([os.path.join(ROOT, "tests/rig/up")], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError("tests/rig/up failed:\n" + p.stderr[-4000:])
    return _exports(p.stdout)


@pytest.fixture(scope="module")
def rig(cluster):
    if os.geteuid() != 0:
        pytest.skip("the SSH rig needs root (network and mount namespaces)")
    yield rig_up()
    # the fault-* nodes must not stay in the cluster as extra GPU nodes
    subprocess.run([os.path.join(ROOT, "tests/rig/down")], capture_output=True, text=True)


class Rig:
    def __init__(self, env, gpuctl_bin, tmp):
        self.env = env
        self.bin = gpuctl_bin
        self.tmp = tmp

    def reset(self, *nodes):
        self.env = rig_up(reset=list(nodes))

    def kubectl(self, *args):
        p = subprocess.run([self.env["KUBECTL"], "--kubeconfig", self.env["KUBECONFIG"], *args], capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0, f"kubectl {' '.join(args)}: {p.stderr}"
        return p

    def deploy(self, *args, check=None, env=None, timeout=300, command="deploy"):
        e = dict(os.environ, KUBECONFIG=self.env["KUBECONFIG"], NO_COLOR="1", HOME=self.tmp)
        e.pop("SSH_AUTH_SOCK", None)
        if env:
            e.update(env)
        cmd = [self.bin, command, "--inventory", self.env["GPUCTL_RIG_INVENTORY"], *args]
        p = subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=timeout)
        if check is not None:
            assert p.returncode == check, (f"{' '.join(cmd)} exited {p.returncode}, expected {check}\n"
                                           f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def deploy_json(self, *args, check=None, env=None):
        p = self.deploy(*args, "-o", "json", check=check, env=env)
        doc = json.loads(p.stdout)
        return {n["name"]: n for n in doc.get("nodes", [])}, doc, p

    def exec(self, node, *cmd, check=True):
        p = subprocess.run([os.path.join(ROOT, "tests/rig/exec"), node, "--", *cmd], capture_output=True,
                           text=True, timeout=120)
        if check:
            assert p.returncode == 0, f"rig exec {node} {cmd}: {p.stderr}"
        return p

    def configured(self, node):
        p = subprocess.run([os.path.join(ROOT, "tests/rig/check-nvidia-runtime"), node], capture_output=True,
                           text=True, timeout=300)
        assert p.returncode in (0, 1), f"check-nvidia-runtime {node}: {p.stdout}{p.stderr}"
        return p.returncode == 0

    def sha(self, node, path="/etc/containerd/config.toml"):
        return hashlib.sha256(self.exec(node, "cat", path).stdout.encode()).hexdigest()

    def containerd_pid(self, node):
        return self.exec(node, "cat", "/run/gpuctl-rig/containerd.pid").stdout.strip()


@pytest.fixture
def r(rig, gpuctl_bin, tmp_path):
    return Rig(rig, gpuctl_bin, str(tmp_path))


def assert_junit_schema(path):
    """The JUnit report is valid by the JUnit XML schema CI servers read (tests/fixtures/junit/junit.xsd)."""
    p = subprocess.run(["xmllint", "--noout", "--schema", os.path.join(ROOT, "tests/fixtures/junit/junit.xsd"), str(path)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"{path} is not valid JUnit XML:\n{p.stderr}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Each phase's report on the test item (rep_setup, rep_call, rep_teardown),
    so a fixture can tell, after the test, whether it failed (diagnostics)."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
