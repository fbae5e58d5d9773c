"""gpuctl label / taint against the real control plane, checked through the API and kubectl."""
import json
import os
import re
import subprocess

import pytest

from conftest import CPU_NODE, GPU_NODES

H100 = "NVIDIA-H100-80GB-HBM3"
A100 = "NVIDIA-A100-SXM4-80GB"


def lines(out):
    return {l.split()[0]: l for l in out.splitlines() if l.startswith("node/")}


def patch_requests(stderr):
    return [l for l in stderr.splitlines() if re.match(r"^I (PATCH|PUT|POST|DELETE) ", l)]


# ---- label ----

def test_default_labels_on_gpu_nodes_only(k8s):
    p = k8s.gpuctl("label", check=0)
    out = lines(p.stdout)
    assert set(out) == {f"node/{n}" for n in GPU_NODES}, p.stdout
    assert all("labeled" in l for l in out.values()), p.stdout
    assert k8s.labels("gpu-node-1")["accelerator"] == "nvidia"
    assert k8s.labels("gpu-node-1")["gpu-type"] == H100
    assert k8s.labels("gpu-node-2")["gpu-type"] == A100
    assert k8s.labels("gpu-node-3")["gpu-type"] == H100
    assert "accelerator" not in k8s.labels(CPU_NODE), "the GPU-less node must be untouched"


def test_second_run_is_unchanged_and_sends_no_write(k8s):
    k8s.gpuctl("label", check=0)
    rvs = {n: k8s.rv(n) for n in GPU_NODES}
    p = k8s.gpuctl("label", "-v", check=0)
    assert all("unchanged" in l for l in lines(p.stdout).values()), p.stdout
    assert patch_requests(p.stderr) == [], p.stderr
    assert {n: k8s.rv(n) for n in GPU_NODES} == rvs
    # one LIST for all nodes, nothing else
    reqs = [l for l in p.stderr.splitlines() if l.startswith("I ")]
    assert len(reqs) == 1 and "GET" in reqs[0] and "/api/v1/nodes?" in reqs[0], reqs


def test_overwrite_refused_changes_no_node(k8s):
    k8s.kubectl("label", "node", "gpu-node-2", "tier=gold")
    p = k8s.gpuctl("label", "tier=silver", check=1)
    assert "'tier' already has a value (gold), and --overwrite is false" in p.stdout + p.stderr
    for n in GPU_NODES:
        assert k8s.labels(n).get("tier") in (None, "gold"), f"{n} was changed"
    p = k8s.gpuctl("label", "tier=silver", "--overwrite", check=0)
    assert all(k8s.labels(n)["tier"] == "silver" for n in GPU_NODES)
    assert "~tier=silver" in lines(p.stdout)["node/gpu-node-2"]


def test_removal_and_absent_removal(k8s):
    p = k8s.gpuctl("label", "foo-", check=0)
    assert all("unchanged" in l for l in lines(p.stdout).values()), p.stdout
    k8s.kubectl("label", "node", "gpu-node-1", "foo=bar")
    p = k8s.gpuctl("label", "foo-", check=0)
    assert "labeled" in lines(p.stdout)["node/gpu-node-1"]
    assert "foo" not in k8s.labels("gpu-node-1")


def test_selector_and_names(k8s):
    p = k8s.gpuctl("label", "-l", "nvidia.com/gpu.present=true", "team=a", check=0)
    assert set(lines(p.stdout)) == {"node/gpu-node-1"}
    p = k8s.gpuctl("label", "gpu-node-3", CPU_NODE, "team=b", check=0)
    assert set(lines(p.stdout)) == {"node/gpu-node-3", f"node/{CPU_NODE}"}
    assert k8s.labels(CPU_NODE)["team"] == "b", "named nodes are acted on even without GPUs"
    p = k8s.gpuctl("label", "no-such-node", "team=c", check=1)
    assert 'node(s) "no-such-node" not found' in p.stderr


def test_auto_detection_sources(k8s):
    k8s.create_node("e2e-nfd", labels={"feature.node.kubernetes.io/pci-10de.present": "true"})
    k8s.create_node("e2e-present", labels={"nvidia.com/gpu.present": "true"})
    k8s.create_node("e2e-capacity", capacity={"cpu": "4", "memory": "8Gi", "pods": "110", "nvidia.com/gpu": "2"})
    k8s.create_node("e2e-amd", labels={"feature.node.kubernetes.io/pci-1002.present": "true"})
    p = k8s.gpuctl("label", "e2e=yes", check=0)
    got = set(lines(p.stdout))
    assert {"node/e2e-nfd", "node/e2e-present"} <= got, p.stdout
    assert "node/e2e-amd" not in got and f"node/{CPU_NODE}" not in got
    # capacity set at create time is kept by the API server for nodes
    if k8s.node("e2e-capacity")["status"].get("capacity", {}).get("nvidia.com/gpu"):
        assert "node/e2e-capacity" in got


def test_json_output_schema_and_clean_stdout(k8s):
    p = k8s.gpuctl("label", "-o", "json", check=0)
    doc = json.loads(p.stdout)  # stdout carries only the document
    assert doc["apiVersion"] == "gpuctl.io/v1alpha1" and doc["kind"] == "NodeLabelResult"
    assert doc["dryRun"] == "none"
    assert doc["summary"] == {"total": 3, "changed": 3, "unchanged": 0, "failed": 0, "skipped": 0}
    n1 = next(n for n in doc["nodes"] if n["name"] == "gpu-node-1")
    assert n1["result"] == "changed"
    assert {"op": "add", "key": "gpu-type", "value": H100} in n1["changes"]
    assert n1["labels"]["accelerator"] == "nvidia"
    p = k8s.gpuctl("label", "-o", "yaml", check=0)
    assert "kind: NodeLabelResult" in p.stdout and "result: unchanged" in p.stdout


def test_dry_run_client_and_server_change_nothing(k8s):
    for mode in ("--dry-run", "--dry-run=server"):
        p = k8s.gpuctl("label", mode, "-o", "json", check=0)
        doc = json.loads(p.stdout)
        assert doc["summary"]["changed"] == 3
        assert all("accelerator" not in k8s.labels(n) for n in GPU_NODES), mode
    p = k8s.gpuctl("label", "--dry-run=server", "bad..key/x=y", check=2)


def test_usage_errors_exit_2(k8s):
    for args in (["label", "a=b=c"], ["label", "-l", "a in x"], ["label", "--bogus"],
                 ["taint", "k=v:Sometimes"], ["taint", "k=v"], ["label", "-o", "table"],
                 ["label", "a=1", "a-"], ["taint", "k=v:NoSchedule", "k-"]):
        p = k8s.gpuctl(*args, check=2)
        assert "error:" in p.stderr and "usage:" in p.stderr, p.stderr


# ---- taint ----

def test_default_taint_matches_kubectl_taint(k8s):
    k8s.create_node("e2e-kubectl", labels={"nvidia.com/gpu.present": "true"})
    k8s.create_node("e2e-gpuctl", labels={"nvidia.com/gpu.present": "true"})
    pre = [{"key": "a", "value": "1", "effect": "PreferNoSchedule"}, {"key": "b", "effect": "NoSchedule"}]
    k8s.set_taints("e2e-kubectl", pre)
    k8s.set_taints("e2e-gpuctl", pre)
    for spec in ("nvidia.com/gpu=true:NoSchedule", "dedicated:NoExecute", "a=2:PreferNoSchedule"):
        k8s.kubectl("taint", "nodes", "e2e-kubectl", spec, "--overwrite")
        k8s.gpuctl("taint", "e2e-gpuctl", spec, "--overwrite", check=0)

    def strip(ts):  # timeAdded differs in time, not in presence
        return [{k: v for k, v in t.items() if k != "timeAdded"} | ({"timeAdded": True} if "timeAdded" in t else {})
                for t in ts]
    assert strip(k8s.taints("e2e-gpuctl")) == strip(k8s.taints("e2e-kubectl"))
    k8s.kubectl("taint", "nodes", "e2e-kubectl", "b:NoSchedule-")
    k8s.gpuctl("taint", "e2e-gpuctl", "b:NoSchedule-", check=0)
    assert strip(k8s.taints("e2e-gpuctl")) == strip(k8s.taints("e2e-kubectl"))


def test_default_taint_on_gpu_nodes_idempotent(k8s):
    p = k8s.gpuctl("taint", check=0)
    assert set(lines(p.stdout)) == {f"node/{n}" for n in GPU_NODES}
    for n in GPU_NODES:
        assert k8s.taints(n) == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    assert k8s.taints(CPU_NODE) == []
    p = k8s.gpuctl("taint", "-v", check=0)
    assert all("unchanged" in l for l in lines(p.stdout).values())
    assert patch_requests(p.stderr) == []


def test_taint_overwrite_and_removal(k8s):
    k8s.gpuctl("taint", check=0)
    p = k8s.gpuctl("taint", "nvidia.com/gpu=false:NoSchedule", check=1)
    assert "already has taint nvidia.com/gpu:NoSchedule" in p.stdout + p.stderr
    assert all(k8s.taints(n)[0]["value"] == "true" for n in GPU_NODES)
    k8s.gpuctl("taint", "nvidia.com/gpu=false:NoSchedule", "--overwrite", check=0)
    assert all(k8s.taints(n)[0]["value"] == "false" for n in GPU_NODES)
    k8s.gpuctl("taint", "gpu-node-1", "other:NoExecute", check=0)
    k8s.gpuctl("taint", "gpu-node-1", "nvidia.com/gpu:NoSchedule-", check=0)
    assert [t["key"] for t in k8s.taints("gpu-node-1")] == ["other"]
    k8s.gpuctl("taint", "gpu-node-1", "other-", check=0)
    assert k8s.taints("gpu-node-1") == []
    p = k8s.gpuctl("taint", "gpu-node-1", "absent-", "absent2:NoSchedule-", check=0)
    assert "unchanged" in p.stdout


def test_taint_json(k8s):
    p = k8s.gpuctl("taint", "gpu-node-1", "-o", "json", check=0)
    doc = json.loads(p.stdout)
    assert doc["kind"] == "NodeTaintResult"
    n = doc["nodes"][0]
    assert n["changes"] == [{"op": "add", "key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    assert n["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]


# ---- label --taint: both in one pass ----

def _edit_state(k8s):
    """Every GPU node's labels, gpuctl's annotations and taints."""
    out = {}
    for n in GPU_NODES:
        node = k8s.node(n)
        ann = {k: v for k, v in node["metadata"].get("annotations", {}).items() if k.startswith("gpuctl.io/")}
        out[n] = (node["metadata"].get("labels", {}), ann,
                  [{k: v for k, v in t.items() if k != "timeAdded"} for t in node["spec"].get("taints", [])])
    return out


def test_label_with_taint_lists_once_and_writes_each_node_once(k8s):
    k8s.gpuctl("cleanup", "--only", "labels", check=0)
    before = _edit_state(k8s)
    # the two commands, for the state they leave
    k8s.gpuctl("label", check=0)
    k8s.gpuctl("taint", check=0)
    two_commands = _edit_state(k8s)
    k8s.gpuctl("cleanup", "--only", "labels", check=0)
    assert _edit_state(k8s) == before
    p = k8s.gpuctl("label", "--taint", "-v", check=0)
    out = lines(p.stdout)
    assert set(out) == {f"node/{n}" for n in GPU_NODES}, p.stdout
    assert "+accelerator=nvidia +gpu-type=NVIDIA-A100-SXM4-80GB +nvidia.com/gpu=true:NoSchedule" in out["node/gpu-node-2"]
    reqs = [l for l in p.stderr.splitlines() if l.startswith("I ")]
    assert len([r for r in reqs if r.startswith("I GET ")]) == 1, reqs
    assert len(patch_requests(p.stderr)) == len(GPU_NODES), reqs
    # the same nodes as the two commands leave them, records included,
    # so cleanup undoes it the same way
    assert _edit_state(k8s) == two_commands
    assert k8s.taints(CPU_NODE) == [] and "accelerator" not in k8s.labels(CPU_NODE)
    # again: nothing to do, one list, no write
    p = k8s.gpuctl("label", "--taint", "-v", check=0)
    assert all("unchanged" in l for l in lines(p.stdout).values()), p.stdout
    assert patch_requests(p.stderr) == []
    doc = json.loads(k8s.gpuctl("label", "--taint", "gpu-node-1", "-o", "json", check=0).stdout)
    n = doc["nodes"][0]
    assert n["labels"]["gpu-type"] == H100 and n["taints"] == [
        {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}], n
    k8s.gpuctl("cleanup", "--only", "labels", check=0)
    assert _edit_state(k8s) == before


def test_label_with_taint_is_both_or_neither(k8s):
    k8s.gpuctl("cleanup", "--only", "labels", check=0)
    k8s.set_taints("gpu-node-2", [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}])
    before = _edit_state(k8s)
    p = k8s.gpuctl("label", "--taint", check=1)
    assert 'gpu-node-2 already has taint nvidia.com/gpu:NoSchedule with value "present"' in p.stdout, p.stdout
    assert _edit_state(k8s) == before, "a refused taint must leave every node as it was, labels included"
    # a taint given explicitly, on named nodes; --overwrite covers it too
    p = k8s.gpuctl("label", "gpu-node-2", "--taint=nvidia.com/gpu=true:NoSchedule", "--overwrite", check=0)
    assert "~nvidia.com/gpu=true:NoSchedule" in lines(p.stdout)["node/gpu-node-2"], p.stdout
    assert k8s.taints("gpu-node-2")[0]["value"] == "true"
    assert k8s.labels("gpu-node-2")["accelerator"] == "nvidia"
    p = k8s.gpuctl("label", "--taint=nvidia.com/gpu", check=2)
    assert "--taint: invalid taint" in p.stderr, p.stderr


# ---- identities, TLS, errors ----

def test_forbidden_user_names_the_permission(k8s):
    p = k8s.gpuctl("--context", "reader", "label", "e2e=x", check=3)
    text = p.stdout + p.stderr
    assert "forbidden" in text and 'cannot patch resource "nodes"' in text and "HTTP 403" in text, text
    assert "node gpu-node-1" in text
    assert all("e2e" not in k8s.labels(n) for n in GPU_NODES)


def test_exec_plugin_user(k8s):
    k8s.gpuctl("--context", "exec", "label", "e2e=exec", check=0)
    assert all(k8s.labels(n)["e2e"] == "exec" for n in GPU_NODES)


def test_invalid_token_gives_401(k8s):
    def bad_token(cfg):
        for u in cfg["users"]:
            if u["name"] == next(c["context"]["user"] for c in cfg["contexts"] if c["name"] == "reader"):
                u["user"]["token"] = "not-a-valid-token"
    kc = k8s.write_kubeconfig("badtoken", bad_token)
    p = k8s.gpuctl("--kubeconfig", kc, "--context", "reader", "label", check=3)
    assert "HTTP 401" in p.stderr and "Unauthorized" in p.stderr, p.stderr


def test_wrong_ca_fails_with_tls_message(k8s):
    ca = os.path.join(k8s.tmp, "other-ca.crt")
    key = os.path.join(k8s.tmp, "other-ca.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", ca, "-days", "1", "-subj", "/CN=other-ca"],
                   check=True, capture_output=True)

    def other_ca(cfg):
        for c in cfg["clusters"]:
            c["cluster"].pop("certificate-authority-data", None)
            c["cluster"]["certificate-authority"] = ca
    kc = k8s.write_kubeconfig("wrongca", other_ca)
    p = k8s.gpuctl("--kubeconfig", kc, "label", check=3)
    assert "TLS" in p.stderr and "certificate" in p.stderr and ca in p.stderr, p.stderr
    assert all("accelerator" not in k8s.labels(n) for n in GPU_NODES)


def test_unreachable_server(k8s):
    p = k8s.gpuctl("--server", "https://127.0.0.1:1", "--request-timeout", "5s", "label", check=3)
    assert "cannot connect to https://127.0.0.1:1" in p.stderr, p.stderr


def test_multi_file_kubeconfig(k8s):
    cfg = json.loads(k8s.kubectl("config", "view", "--raw", "-o", "json").stdout)
    a = dict(cfg, contexts=[], **{"current-context": ""})
    b = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [],
         "contexts": cfg["contexts"], "current-context": cfg["current-context"]}
    fa, fb = os.path.join(k8s.tmp, "a.json"), os.path.join(k8s.tmp, "b.json")
    json.dump(a, open(fa, "w"))
    json.dump(b, open(fb, "w"))
    k8s.gpuctl("label", "e2e=merged", env={"KUBECONFIG": f"{fb}:{fa}"}, check=0)
    assert k8s.labels("gpu-node-1")["e2e"] == "merged"


def test_config_file_defaults(k8s):
    cfg = os.path.join(k8s.tmp, "gpuctl.yaml")
    with open(cfg, "w") as f:
        f.write("apiVersion: gpuctl.io/v1alpha1\nkind: Config\nlabel:\n  defaults:\n    team: ml\n"
                "    gpu-type: 'gpu-{product}'\ntaint:\n  defaults:\n  - dedicated=gpu:NoExecute\n")
    k8s.gpuctl("--config", cfg, "label", "gpu-node-1", check=0)
    assert k8s.labels("gpu-node-1")["team"] == "ml"
    assert k8s.labels("gpu-node-1")["gpu-type"] == "gpu-" + H100
    k8s.gpuctl("taint", "gpu-node-1", env={"GPUCTL_CONFIG": cfg}, check=0)
    assert [t["key"] for t in k8s.taints("gpu-node-1")] == ["dedicated"]
    with open(cfg, "w") as f:
        f.write("apiVersion: gpuctl.io/v1alpha1\nkind: Config\ntaint:\n  defaults:\n  - bogus\n")
    p = k8s.gpuctl("--config", cfg, "taint", check=2)
    assert cfg in p.stderr and "taint.defaults[0]" in p.stderr


def test_write_error_is_not_success(k8s):
    with open("/dev/full", "w") as full:
        p = subprocess.run([k8s.bin, "label", "-o", "json"], stdout=full, stderr=subprocess.PIPE, text=True,
                           env=k8s._env())
    assert p.returncode != 0 and "cannot write" in p.stderr


def test_help_version_and_every_command_built(k8s):
    assert k8s.gpuctl("--version", check=0).stdout.startswith("gpuctl ")
    h = k8s.gpuctl("--help", check=0).stdout
    for c in ("label", "taint", "deploy", "slice", "smoke-test", "validate", "cleanup"):
        assert c in h
    assert "--overwrite" in k8s.gpuctl("help", "taint", check=0).stdout
    for c in ("label", "taint", "deploy", "slice", "smoke-test", "validate", "cleanup"):
        p = k8s.gpuctl("help", c, check=0)
        assert "not built yet" not in p.stdout + p.stderr and "usage: gpuctl " + c in p.stdout, c
    # a bad flag is a usage error (exit 2), never "not built"
    p = k8s.gpuctl("smoke-test", "--no-such-flag", check=2)
    assert "not built yet" not in p.stderr
    assert "--junit" in k8s.gpuctl("help", "validate", check=0).stdout
    k8s.gpuctl("help", "nope", check=2)


def test_completion_helper_lists_nodes(k8s):
    p = k8s.gpuctl("__complete", "nodes", check=0)
    assert set(GPU_NODES + [CPU_NODE]) <= set(p.stdout.split())
