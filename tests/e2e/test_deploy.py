"""gpuctl deploy's node phase against the SSH rig: real sshd, sudo, containerd
and runc per simulated node; the result proven through containerd's CRI."""
import hashlib
import json
import os
import re
import subprocess
import time

import pytest

from conftest import ROOT, HEALTHY, FAULTS

def test_prepares_nodes_and_proves_it_through_cri(r):
    r.reset(*HEALTHY)
    assert not r.configured("gpu-node-1"), "a fresh node must not have the nvidia runtime"
    nodes, doc, p = r.deploy_json(*HEALTHY, check=0)
    assert doc["kind"] == "DeployResult"
    for n, gpus in zip(HEALTHY, (1, 4, 8)):
        res = nodes[n]
        assert res["result"] == "changed", res
        probe = res["probe"]
        assert probe["driver"]["version"] == "580.159.04" and probe["driver"]["cudaVersion"] == "13.0"
        assert probe["driver"]["meetsMinimum"] is True
        assert len(probe["gpus"]) == gpus and probe["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3"
        assert probe["kernelModules"] == {"nvidia": True, "nvidia_uvm": True, "nvidia_modeset": False}
        assert probe["containerd"]["version"].startswith("1.6") and probe["containerd"]["configVersion"] == 2
        assert res["containerd"]["method"] == "drop-in" and res["containerd"]["backup"]
        assert r.configured(n), f"{n}: the nvidia runtime does not work through CRI"
    assert nodes["gpu-node-1"]["probe"]["gpus"][0]["uuid"] == "GPU-f3c1c444-0b96-889d-5c44-d5150de13261"
    assert doc["runtimeClass"]["handler"] == "nvidia"


def test_second_run_is_unchanged_and_does_not_restart(r):
    r.deploy("gpu-node-1", check=0)
    pid = r.containerd_pid("gpu-node-1")
    before = r.sha("gpu-node-1")
    nodes, _, _ = r.deploy_json("gpu-node-1", check=0)
    assert nodes["gpu-node-1"]["result"] == "unchanged"
    assert r.containerd_pid("gpu-node-1") == pid, "containerd was restarted on an unchanged node"
    assert r.sha("gpu-node-1") == before


def test_dry_run_changes_nothing(r):
    r.reset("gpu-node-2")
    before = r.sha("gpu-node-2")
    pid = r.containerd_pid("gpu-node-2")
    p = r.deploy("--dry-run", "gpu-node-2", check=0)
    assert "[dry run]" in p.stdout
    assert r.sha("gpu-node-2") == before and r.containerd_pid("gpu-node-2") == pid
    assert not r.configured("gpu-node-2")


def test_faulty_nodes_fail_clearly_and_nothing_is_lost(r):
    r.reset("fault-bad-config", "fault-restart-fails", "gpu-node-3")
    bad_before = r.sha("fault-bad-config")
    orig = open(os.path.join(r.env["GPUCTL_RIG_DIR"], "nodes/fault-restart-fails/original-config.toml"), "rb").read()
    t0 = time.monotonic()
    nodes, doc, p = r.deploy_json("--ssh-timeout", "5", "gpu-node-3", *FAULTS, check=1)
    wall = time.monotonic() - t0
    assert nodes["gpu-node-3"]["result"] == "changed", "healthy nodes are done despite the faulty ones"
    msg = {n: nodes[n].get("error", {}).get("message", "") for n in FAULTS}
    assert "NVIDIA-SMI has failed" in msg["fault-broken-driver"], msg
    assert "older than the minimum 470" in msg["fault-old-driver"], msg
    assert "unknown host key" in msg["fault-unknown-hostkey"] and "SHA256:" in msg["fault-unknown-hostkey"]
    assert nodes["fault-hang"]["result"] == "failed" and nodes["fault-hang"]["error"]["reason"] == "timeout", \
        msg["fault-hang"]
    assert wall < 40, f"one hung node held the run for {wall:.0f}s (timeout 5s)"
    assert "cannot parse" in msg["fault-bad-config"], msg
    assert r.sha("fault-bad-config") == bad_before, "a config containerd cannot parse was touched"
    assert nodes["fault-restart-fails"]["result"] == "rolled-back", nodes["fault-restart-fails"]
    assert "rolled back" in msg["fault-restart-fails"]
    now = r.exec("fault-restart-fails", "cat", "/etc/containerd/config.toml").stdout.encode()
    assert now == orig, "rollback did not restore the original byte for byte"
    assert r.exec("fault-restart-fails", "systemctl", "is-active", "containerd", check=False).stdout.strip() == "active"
    # the text output: one line per node and a summary
    p = r.deploy("--ssh-timeout", "5", "fault-old-driver", check=1)
    assert p.stdout.startswith("node/fault-old-driver  failed") and "1 failed" in p.stderr


def test_k3s_node_gets_the_runtime_through_its_template(r):
    r.reset("k3s-gpu-node")
    tmpl = "/var/lib/rancher/k3s/agent/etc/containerd/config.toml.tmpl"
    assert r.exec("k3s-gpu-node", "test", "-e", tmpl, check=False).returncode != 0
    nodes, _, _ = r.deploy_json("--only", "nodes", "k3s-gpu-node", check=0)
    res = nodes["k3s-gpu-node"]
    assert res["result"] == "changed" and res["containerd"]["method"] == "k3s-template", res
    text = r.exec("k3s-gpu-node", "cat", tmpl).stdout
    assert text.startswith('{{ template "base" . }}\n') and "runtimes.nvidia.options]" in text
    gen = r.exec("k3s-gpu-node", "cat", "/var/lib/rancher/k3s/agent/etc/containerd/config.toml").stdout
    assert "BinaryName" in gen and "runtimes.nvidia" in gen, "k3s did not regenerate its config from the template"
    assert r.configured("k3s-gpu-node")
    nodes, _, _ = r.deploy_json("--only", "nodes", "k3s-gpu-node", check=0)
    assert nodes["k3s-gpu-node"]["result"] == "unchanged"


def test_rke2_node_found_and_prepared_without_inventory_hints(r):
    """An rke2 agent: the inventory says nothing of containerd; gpuctl finds the flavour from
    /var/lib/rancher/rke2, writes the template and restarts the unit it finds active (rke2-agent)."""
    n = "rke2-gpu-node"
    r.reset(n)
    tmpl = "/var/lib/rancher/rke2/agent/etc/containerd/config.toml.tmpl"
    nodes, _, _ = r.deploy_json("--only", "nodes", n, check=0)
    res = nodes[n]
    assert res["probe"]["containerd"]["flavour"] == "rke2", res["probe"]
    assert res["result"] == "changed" and res["containerd"]["method"] == "k3s-template", res
    assert any("systemctl restart rke2-agent" in s for s in res["containerd"]["steps"]), res["containerd"]["steps"]
    text = r.exec(n, "cat", tmpl).stdout
    assert text.startswith('{{ template "base" . }}\n') and "runtimes.nvidia.options]" in text
    assert r.configured(n)
    nodes, _, _ = r.deploy_json("--only", "nodes", n, check=0)
    assert nodes[n]["result"] == "unchanged"


def test_accept_new_adds_unknown_host_key(r):
    kh = os.path.join(r.tmp, "known_hosts")
    with open(r.env["GPUCTL_RIG_KNOWN_HOSTS"]) as src, open(kh, "w") as dst:
        dst.write(src.read())
    before = open(kh).read()
    r.deploy("--known-hosts", kh, "--ssh-accept-new", "--only", "nodes", "fault-unknown-hostkey", check=0)
    added = open(kh).read()[len(before):]
    # the new entry is hashed, as OpenSSH's HashKnownHosts writes it, and OpenSSH finds it
    assert added.startswith("|1|") and "10.77.0.203" not in added, added
    assert subprocess.run(["ssh-keygen", "-F", "10.77.0.203", "-f", kh], capture_output=True).returncode == 0
    r.deploy("--known-hosts", kh, "--only", "nodes", "fault-unknown-hostkey", check=0)


def test_changed_host_key_is_refused(r):
    kh = os.path.join(r.tmp, "known_hosts")
    key = os.path.join(r.tmp, "k")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    pub = open(key + ".pub").read().split()
    with open(kh, "w") as f:
        f.write(f"10.77.0.11 {pub[0]} {pub[1]}\n")
    p = r.deploy("--known-hosts", kh, "--ssh-accept-new", "--only", "nodes", "gpu-node-1", check=1)
    assert "CHANGED" in p.stdout + p.stderr and "SHA256:" in p.stdout + p.stderr


def test_sudo_that_wants_a_password_is_a_clear_error(r):
    p = r.deploy("--ssh-user", r.env["GPUCTL_RIG_USER_SUDO_PASSWORD"], "--ssh-timeout", "10", "--only", "nodes",
                 "gpu-node-1", check=1)
    assert "needs a password for sudo" in p.stdout + p.stderr


def test_encrypted_and_rsa_keys(r):
    r.deploy("-i", r.env["GPUCTL_RIG_KEY_ECDSA_ENC"], "--only", "nodes", "gpu-node-1",
             env={"GPUCTL_SSH_PASSPHRASE": r.env["GPUCTL_RIG_KEY_PASSPHRASE"]}, check=0)
    p = r.deploy("-i", r.env["GPUCTL_RIG_KEY_ECDSA_ENC"], "--only", "nodes", "gpu-node-1", check=1)
    assert "passphrase" in p.stdout + p.stderr
    # RSA: libssh2 1.11 and later sign with rsa-sha2-512/256, which the node's OpenSSH 9 accepts
    # (tests/build links 1.11); before 1.11 libssh2 signs with ssh-rsa (SHA-1), which it refuses,
    # and then the error must say so instead of a bare "refused"
    version = subprocess.run([r.bin, "--version"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"^libssh2 (\d+)\.(\d+)", version, re.M)
    assert m, version
    if (int(m.group(1)), int(m.group(2))) >= (1, 11):
        r.deploy("-i", r.env["GPUCTL_RIG_KEY_RSA"], "--only", "nodes", "gpu-node-1", check=0)
    else:
        p = r.deploy("-i", r.env["GPUCTL_RIG_KEY_RSA"], "--only", "nodes", "gpu-node-1")
        if p.returncode != 0:
            assert "RSA key" in p.stderr and "ed25519 or ecdsa" in p.stderr, p.stdout + p.stderr


def test_bad_inventory_is_a_usage_error(r):
    bad = os.path.join(r.tmp, "inv.yaml")
    with open(bad, "w") as f:
        f.write("apiVersion: gpuctl.io/v1alpha1\nkind: Inventory\nnodes:\n- {name: gpu-node-1, adress: x}\n")
    p = subprocess.run([r.bin, "deploy", "--inventory", bad], capture_output=True, text=True,
                       env=dict(os.environ, KUBECONFIG=r.env["KUBECONFIG"]))
    assert p.returncode == 2 and bad in p.stderr and 'unknown field "adress"' in p.stderr


def test_default_runtime(r):
    r.reset("gpu-node-2")
    nodes, _, _ = r.deploy_json("--only", "nodes", "--default-runtime", "gpu-node-2", check=0)
    assert nodes["gpu-node-2"]["result"] == "changed"
    p = subprocess.run([os.path.join(ROOT, "tests/rig/check-nvidia-runtime"), "--default", "gpu-node-2"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    nodes, _, _ = r.deploy_json("--only", "nodes", "--default-runtime", "gpu-node-2", check=0)
    assert nodes["gpu-node-2"]["result"] == "unchanged"


def test_talos_node_gets_the_machine_config_patch(r, cluster):
    kubectl = cluster["KUBECTL"]
    env = dict(os.environ, KUBECONFIG=cluster["KUBECONFIG"])
    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "e2e-talos", "labels": {"nvidia.com/gpu.present": "true", "e2e-extra": "true"}},
            "status": {"nodeInfo": {"osImage": "Talos (v1.9.1)"},
                       "addresses": [{"type": "InternalIP", "address": "127.30.0.1"}]}}
    subprocess.run([kubectl, "create", "-f", "-"], input=json.dumps(node), text=True, env=env, check=True,
                   capture_output=True)
    try:
        p = r.deploy("--only", "nodes", "e2e-talos", check=1)
        assert "runs Talos (v1.9.1), which has no SSH" in p.stdout
        assert "machine:" in p.stderr and "nvidia_uvm" in p.stderr and "talosctl patch mc" in p.stderr
    finally:
        subprocess.run([kubectl, "delete", "node", "e2e-talos"], env=env, capture_output=True)


def test_jump_host(r):
    r.reset("gpu-node-2")
    nodes, _, _ = r.deploy_json("--only", "nodes", "-J", "gpuadmin@10.77.0.11", "gpu-node-2", check=0)
    assert nodes["gpu-node-2"]["result"] == "changed"
    log = r.exec("gpu-node-2", "sh", "-c", "grep Accepted /var/log/sshd.log | tail -n 1").stdout
    assert "from 10.77.0.11 " in log, f"the connection did not come through the jump host: {log}"
    p = r.deploy("--only", "nodes", "-J", "gpuadmin@10.77.0.204", "--ssh-timeout", "3", "gpu-node-1", check=1)
    assert "jump host 10.77.0.204" in p.stdout + p.stderr


@pytest.mark.parametrize("n", ["ctk-gpu-node", "ctk-containerd2-gpu-node"])
def test_nvidia_ctk_is_preferred_where_installed(r, n):
    """The real nvidia-ctk (v1.17.8), with containerd 1.6 and with containerd 2.x."""
    r.reset(n)
    before = r.exec(n, "cat", "/etc/containerd/config.toml").stdout
    nodes, _, _ = r.deploy_json("--only", "nodes", n, check=0)
    res = nodes[n]
    assert res["probe"]["toolkit"]["nvidiaCtk"] == "/usr/local/bin/nvidia-ctk"
    assert res["result"] == "changed" and res["containerd"]["method"] == "nvidia-ctk", res
    assert r.exec(n, "cat", res["containerd"]["backup"]).stdout == before
    assert r.configured(n), "the configuration nvidia-ctk wrote does not run GPU containers"
    nodes, _, _ = r.deploy_json("--only", "nodes", n, check=0)
    assert nodes[n]["result"] == "unchanged"


def test_containerd2_node_config_version_3(r):
    """containerd 2.x (built from the Go module on the rig): config version 3, CRI plugin
    io.containerd.cri.v1.runtime, dumps in single quotes, imports merged key by key."""
    n = "containerd2-gpu-node"
    r.reset(n)
    assert not r.configured(n)
    nodes, _, _ = r.deploy_json("--only", "nodes", n, check=0)
    res = nodes[n]
    assert res["result"] == "changed", res
    ct = res["probe"]["containerd"]
    assert ct["version"].startswith("2.") and ct["configVersion"] == 3 and ct["flavour"] == "containerd2", ct
    assert res["containerd"]["method"] == "drop-in"
    dropin = r.exec(n, "cat", "/etc/containerd/conf.d/99-gpuctl-nvidia.toml").stdout
    assert "version = 3\n" in dropin
    assert '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.nvidia.options]' in dropin
    assert "enable_cdi" not in dropin, "containerd 2 merges imports key by key: only the runtime is written"
    main = r.exec(n, "cat", "/etc/containerd/config.toml").stdout
    assert main.startswith('version = 3\nimports = ["/etc/containerd/conf.d/*.toml"]\n'), main
    assert r.configured(n), "the nvidia runtime does not work through containerd 2's CRI"
    pid = r.containerd_pid(n)
    nodes, _, _ = r.deploy_json("--only", "nodes", n, check=0)
    assert nodes[n]["result"] == "unchanged" and r.containerd_pid(n) == pid
    nodes, _, _ = r.deploy_json("--only", "nodes", "--default-runtime", n, check=0)
    assert nodes[n]["result"] == "changed"
    p = subprocess.run([os.path.join(ROOT, "tests/rig/check-nvidia-runtime"), "--default", n],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr


def test_containerd2_failed_restart_rolls_back(r):
    n = "containerd2-gpu-node"
    r.reset(n)
    orig = r.exec(n, "cat", "/etc/containerd/config.toml").stdout
    # the first restart fails (as a unit that will not start would), the one of the rollback works
    once = ("sh -c 'if [ ! -e /run/gpuctl-rig/failed-once ]; then touch /run/gpuctl-rig/failed-once; "
            "systemctl stop containerd; exit 1; fi; systemctl restart containerd'")
    nodes, _, _ = r.deploy_json("--only", "nodes", "--restart-command", once, n, check=1)
    res = nodes[n]
    assert res["result"] == "rolled-back", res
    assert "containerd running again" in res["error"]["message"], res["error"]
    assert r.exec(n, "cat", "/etc/containerd/config.toml").stdout == orig, "not restored byte for byte"
    assert r.exec(n, "test", "-e", "/etc/containerd/conf.d/99-gpuctl-nvidia.toml", check=False).returncode != 0
    assert r.exec(n, "systemctl", "is-active", "containerd", check=False).stdout.strip() == "active"
    assert not r.configured(n)


def test_from_inventory_without_a_cluster(r):
    """Preparing nodes before they join a cluster: --from-inventory takes the nodes from the
    inventory and never contacts the API (the kubeconfig here does not even exist)."""
    r.reset("gpu-node-2")
    env = {"KUBECONFIG": os.path.join(r.tmp, "no-such-kubeconfig")}
    nodes, doc, _ = r.deploy_json("--only", "nodes", "--from-inventory", "gpu-node-2", check=0, env=env)
    assert nodes["gpu-node-2"]["result"] == "changed" and "runtimeClass" not in doc
    assert r.configured("gpu-node-2")
    p = r.deploy("--only", "nodes", "--from-inventory", "gpu-node-2", check=0, env=env, command="validate")
    assert "node.nvidia-runtime  gpu-node-2  pass" in p.stdout, p.stdout
    p = r.deploy("--from-inventory", "gpu-node-2", check=2, env=env)
    assert "--only nodes" in p.stderr
    p = r.deploy("--only", "nodes", "--from-inventory", "not-in-inventory", check=1, env=env)
    assert "not-in-inventory not in the inventory" in p.stderr
