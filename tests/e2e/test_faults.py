"""Faults injected while gpuctl changes a node: a restart that hangs, two runs
on one node at once, sshd dying right after the write (with and without
coming back), the connection cut in the middle of a file transfer, and an
interrupt (SIGINT) in the middle of a run.  Each ends with every node either
fully verified or byte-identical to its original, and a report that says
which."""
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import ROOT

CFG = "/etc/containerd/config.toml"
DROPIN = "/etc/containerd/conf.d/99-gpuctl-nvidia.toml"


def files_state(r, node):
    """config.toml's hash, whether the drop-in exists, and gpuctl's leftovers."""
    ls = r.exec(node, "sh", "-c", "ls -a /etc/containerd; ls -a /etc/containerd/conf.d 2>/dev/null; true").stdout
    return {
        "sha": r.sha(node),
        "dropin": r.exec(node, "test", "-e", DROPIN, check=False).returncode == 0,
        "tmp": [l for l in ls.split() if "gpuctl-tmp" in l],
    }


def pristine(r, node):
    r.reset(node)
    st = files_state(r, node)
    assert not st["dropin"] and not st["tmp"]
    return st


def containerd_active(r, node):
    return r.exec(node, "systemctl", "is-active", "containerd", check=False).stdout.strip() == "active"


def test_restart_that_hangs_is_bounded_killed_and_rolled_back(r):
    n = "gpu-node-2"
    before = pristine(r, n)
    # the first restart hangs (as a wedged unit would), the rollback's works
    hang = "[ -e /run/gpuctl-e2e-hung ] || { touch /run/gpuctl-e2e-hung; sleep 600; }; systemctl restart containerd"
    r.exec(n, "rm", "-f", "/run/gpuctl-e2e-hung")
    t = time.monotonic()
    nodes, doc, p = r.deploy_json("--only", "nodes", "--ssh-timeout", "5", "--restart-command", hang, n, check=None)
    took = time.monotonic() - t
    res = nodes[n]
    assert p.returncode == 1, p.stderr
    assert res["result"] == "rolled-back", res
    assert res["error"]["reason"] == "timeout", res
    assert took < 60, f"a hanging restart held gpuctl for {took:.0f} s"
    after = files_state(r, n)
    assert after == before, f"not byte-identical after the rollback: {before} -> {after}"
    assert containerd_active(r, n)
    # the hung command was stopped on the node, not left behind
    deadline = time.monotonic() + 15
    while r.exec(n, "pgrep", "-f", "sleep 600", check=False).returncode == 0:
        assert time.monotonic() < deadline, "the timed-out restart command still runs on the node"
        time.sleep(0.5)


def test_two_runs_on_one_node_exclude_each_other(r):
    n = "gpu-node-3"
    pristine(r, n)
    slow = "sleep 8; systemctl restart containerd"
    first = subprocess.Popen(
        [r.bin, "deploy", "--inventory", r.env["GPUCTL_RIG_INVENTORY"], "--only", "nodes", "--restart-command", slow,
         "-o", "json", n],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, KUBECONFIG=r.env["KUBECONFIG"], NO_COLOR="1", HOME=r.tmp))
    time.sleep(3)
    nodes, _, p = r.deploy_json("--only", "nodes", n, check=1)
    second = nodes[n]
    assert second["result"] == "failed" and second["error"]["reason"] == "conflict", second
    assert "another gpuctl is changing this node" in second["error"]["message"], second
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    one = {x["name"]: x for x in json.loads(out)["nodes"]}[n]
    assert one["result"] == "changed", one
    assert r.configured(n), "the first run's change does not work through CRI"
    backups = r.exec(n, "sh", "-c", "ls /etc/containerd | grep -c gpuctl-backup || true").stdout.strip()
    assert backups == "1", f"the refused run left backups: {backups}"


def sshd_restart_cmd(back_after):
    """A restart command that kills the node's sshd (our session with it) right
    after the write; sshd comes back after back_after seconds (None: never)."""
    again = "" if back_after is None else \
        f"setsid sh -c 'sleep {back_after}; /usr/sbin/sshd -E /var/log/sshd.log' </dev/null >/dev/null 2>&1 & "
    return again + "pkill -x sshd; sleep 5; exit 1"


def test_sshd_dying_after_the_write_is_rolled_back_over_a_new_connection(r):
    n = "gpu-node-1"
    before = pristine(r, n)
    nodes, _, p = r.deploy_json("--only", "nodes", "--ssh-timeout", "10", "--restart-command", sshd_restart_cmd(1), n)
    res = nodes[n]
    assert p.returncode == 1
    assert res["result"] == "rolled-back", res
    assert files_state(r, n) == before
    assert containerd_active(r, n)


def test_sshd_that_stays_down_is_rollback_failed_with_the_steps_that_finish_it(r):
    n = "gpu-node-1"
    before = pristine(r, n)
    try:
        kill = sshd_restart_cmd(None)
        nodes, _, p = r.deploy_json("--only", "nodes", "--ssh-timeout", "5", "--restart-command", kill, n)
        res = nodes[n]
        assert p.returncode == 1
        assert res["result"] == "rollback-failed", res
        steps = res["containerd"]["manualSteps"]
        assert steps and all(isinstance(s, str) for s in steps), res
        assert "ROLLBACK" in res["error"]["message"]
        assert files_state(r, n)["dropin"], "the drop-in should still be there: the rollback could not run"
        # the steps gpuctl printed finish the job by hand (the last restarts
        # containerd with the restart command given: here the one that broke sshd)
        assert steps[-1] == kill, steps
        for s in steps[:-1] + ["systemctl restart containerd"]:
            r.exec(n, "sh", "-c", s)
        assert files_state(r, n) == before
        assert containerd_active(r, n)
    finally:
        r.reset(n)  # sshd back for the next tests


class CutProxy:
    """A TCP proxy in front of a node's sshd that cuts a connection once the
    client has sent more than `cut_after` bytes on it (the connection number
    `nth`, counting from 1)."""

    def __init__(self, target, cut_after, nth=1):
        self.target, self.cut_after, self.nth = target, cut_after, nth
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        self.count = 0
        self.cut = False
        self.sent = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            self.count += 1
            threading.Thread(target=self._serve, args=(c, self.count), daemon=True).start()

    def _serve(self, c, k):
        s = socket.create_connection(self.target)
        up = [0]
        done = threading.Event()

        def pump(a, b, count):
            try:
                while not done.is_set():
                    d = a.recv(65536)
                    if not d:
                        break
                    if count and k == self.nth and up[0] + len(d) > self.cut_after:
                        keep = max(0, self.cut_after - up[0])
                        b.sendall(d[:keep])
                        up[0] += keep
                        self.cut = True
                        break
                    b.sendall(d)
                    if count:
                        up[0] += len(d)
            except OSError:
                pass
            done.set()
            for x in (a, b):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        t = threading.Thread(target=pump, args=(s, c, False), daemon=True)
        t.start()
        pump(c, s, True)
        t.join(5)
        self.sent.append(up[0])
        c.close()
        s.close()

    def close(self):
        """Stop accepting; wait (5 s at most) until every connection has ended."""
        self.srv.close()
        deadline = time.monotonic() + 5
        while len(self.sent) < self.count and time.monotonic() < deadline:
            time.sleep(0.05)


def rig_address(r, node):
    """The node's address, as the rig's inventory gives it."""
    lines = open(r.env["GPUCTL_RIG_INVENTORY"]).read().splitlines()
    for i, line in enumerate(lines):
        if line.strip() == f"- name: {node}":
            return lines[i + 1].split("address:", 1)[1].strip()
    raise AssertionError(f"{node} is not in the rig's inventory")


def proxy_inventory(r, node, addr, port, path):
    """An inventory that reaches node through 127.0.0.1:port (its host keys
    recorded for that address)."""
    kh = os.path.join(r.tmp, "known_hosts_proxy")
    with open(r.env["GPUCTL_RIG_KNOWN_HOSTS"]) as f, open(kh, "w") as out:
        for line in f:
            if line.startswith(addr + " "):
                out.write(f"[127.0.0.1]:{port} " + line.split(" ", 1)[1])
    with open(path, "w") as f:
        f.write(f"""apiVersion: gpuctl.io/v1alpha1
kind: Inventory
defaults:
  user: gpuadmin
  identityFile: {r.env['GPUCTL_RIG_KEY']}
  knownHosts: {kh}
  sudo: true
nodes:
  - name: {node}
    address: 127.0.0.1
    port: {port}
    containerd:
      flavour: containerd1
""")


def test_connection_cut_anywhere_in_a_run_leaves_the_node_whole(r):
    # gpu-node-2: its known_hosts lines are plain (gpu-node-K, K even)
    n = "gpu-node-2"
    r.reset(n)
    addr = rig_address(r, n)
    inv = os.path.join(r.tmp, "proxy-inventory.yaml")
    # what a whole run sends, through a proxy that cuts nothing (then undone)
    whole = CutProxy((addr, 22), cut_after=1 << 40)
    proxy_inventory(r, n, addr, whole.port, inv)
    r.deploy("--only", "nodes", "--inventory", inv, n, check=0)
    whole.close()
    total = whole.sent[0]
    # cut the first connection at points spread over the run: after the probe,
    # in the lock, in the writes, the verification, the restart
    results = []
    for k in range(1, 9):
        r.reset(n)
        before = files_state(r, n)
        at = total * k // 9
        cut = CutProxy((addr, 22), cut_after=at)
        proxy_inventory(r, n, addr, cut.port, inv)
        p = r.deploy("--only", "nodes", "-o", "json", "--ssh-timeout", "10", "--inventory", inv, n, check=None)
        cut.close()
        assert cut.cut, f"cut at {at} of {total}: the proxy never cut"
        res = {x["name"]: x for x in json.loads(p.stdout)["nodes"]}[n]
        after = files_state(r, n)
        results.append((at, res["result"]))
        assert not after["tmp"], f"cut at {at}: temp files left: {after['tmp']}"
        if res["result"] == "changed":
            assert r.configured(n), f"cut at {at}: reported changed but the runtime does not work"
        else:
            assert p.returncode == 1 and res["result"] in ("failed", "rolled-back"), (at, res)
            assert after == before, f"cut at {at} of {total}: the node was left changed: {res}"
    assert any(x != "changed" for _, x in results), results


def test_interrupt_finishes_nodes_in_flight_and_starts_no_other(r):
    nodes = ["gpu-node-1", "gpu-node-2", "gpu-node-3"]
    r.reset(*nodes)
    befores = {n: files_state(r, n) for n in nodes}
    slow = "sleep 4; systemctl restart containerd"
    p = subprocess.Popen(
        [r.bin, "deploy", "--inventory", r.env["GPUCTL_RIG_INVENTORY"], "--only", "nodes", "--parallel", "1",
         "--restart-command", slow, "-o", "json", *nodes],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, KUBECONFIG=r.env["KUBECONFIG"], NO_COLOR="1", HOME=r.tmp))
    time.sleep(2.5)  # the first node is in its restart
    p.send_signal(signal.SIGINT)
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)  # a second Ctrl-C does not kill it either
    out, err = p.communicate(timeout=120)
    assert p.returncode == 1, err
    assert "finishing the node changes in flight safely" in err
    res = {x["name"]: x for x in json.loads(out)["nodes"]}
    done = [n for n in nodes if res[n]["result"] == "changed"]
    untouched = [n for n in nodes if res[n].get("error", {}).get("reason") == "interrupted"]
    assert len(done) == 1, res
    assert len(untouched) == 2, res
    assert r.configured(done[0]), "the node in flight was not finished and verified"
    for n in untouched:
        assert files_state(r, n) == befores[n], f"{n} was touched after the interrupt"
