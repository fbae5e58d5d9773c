#!/bin/sh
# Becomes pid 1 of a simulated node. Started by tests/rig/up as root inside
# the node's network namespace and its fresh (persisted) mount, UTS and PID
# namespaces:
#
#   node-setup.sh NODE_DIR NAME RIG_NS_DIR RIG_INIT [CRICTL [KUBELET]]
#
# Gives the node its own view of the filesystem: copy-on-write overlays over
# the host's /etc, /var/lib and /root (the node's changes land in
# NODE_DIR/fs/*.upper; the host's files stay untouched), private folders bound
# over /home, /usr/local, /var/log, /run, /tmp, its own /proc (its PID
# namespace) with /proc/driver from the replay data, and the node's
# containerd root on a plain ext4 folder (its overlayfs snapshotter cannot
# live on an overlay). Mounts never propagate to the host (private
# propagation). Then writes /run/gpuctl-rig/ready and execs RIG_INIT, which
# reaps the node's orphans for as long as the node lives.
set -eu
N=$1 NAME=$2 RIGNS=$3 INIT=$4 CRICTL=${5:-} KUBELET=${6:-}
FS=$N/fs

# Copies of the host's namespace mounts would pin other nodes' namespaces.
umount -l "$RIGNS" 2>/dev/null || true
if mountpoint -q /run/netns 2>/dev/null; then umount -l /run/netns; fi

hostname "$NAME"
mount -t proc -o nosuid,nodev,noexec proc /proc
# A kubelet node: the host-wide tunables the kubelet writes are files of the
# node's own (lib/kubelet.sh), so the machine's values never change.
if [ -d "$FS/sysctl" ]; then
	for f in "$FS"/sysctl/*; do
		p=/proc/sys/$(basename "$f" | tr . /)
		[ -e "$p" ] && mount --bind "$f" "$p"
	done
fi

ovl() { # DIR NAME: copy-on-write view of the host's DIR
	mount -t overlay "gpuctl-rig-$2" -o "lowerdir=$1,upperdir=$FS/$2.upper,workdir=$FS/$2.work" "$1"
}
ovl /etc etc
ovl /var/lib var-lib
ovl /root root
mount --bind "$FS/containerd-root" /var/lib/containerd
for f in k3s rke2; do
	if [ -d "$FS/$f-containerd-root" ]; then
		mount --bind "$FS/$f-containerd-root" "/var/lib/rancher/$f/agent/containerd"
	fi
done
mount --bind "$FS/home" /home
mount --bind "$FS/usr-local" /usr/local
mount --bind "$FS/log" /var/log
mount --bind "$FS/run" /run
mount --bind "$FS/proc-driver" /proc/driver
if [ -e /proc/modules ] && [ -f "$FS/proc-modules" ]; then
	mount --bind "$FS/proc-modules" /proc/modules
fi
if [ -f /usr/bin/systemctl ]; then
	mount --bind /usr/local/bin/systemctl /usr/bin/systemctl
fi
# containerd 2.x on a containerd2-flavoured node, in place of Debian's 1.6
for b in containerd containerd-shim-runc-v2 ctr; do
	if [ -f "$FS/usr-local/share/gpuctl-rig/containerd2/$b" ]; then
		mount --bind "$FS/usr-local/share/gpuctl-rig/containerd2/$b" "/usr/bin/$b"
	fi
done
if [ -n "$CRICTL" ] && [ -f "$CRICTL" ] && [ -f /usr/local/bin/crictl ]; then
	mount --bind "$CRICTL" /usr/local/bin/crictl
fi
if [ -n "$KUBELET" ] && [ -f "$KUBELET" ] && [ -f /usr/local/bin/kubelet ]; then
	mount --bind "$KUBELET" /usr/local/bin/kubelet
fi
# A kubelet node's mounts are shared, as on a systemd host (which makes /
# rshared at boot): the device plugin's MPS control daemon mounts its
# /dev/shm under /run/nvidia/mps with Bidirectional propagation, and the GPU
# Operator's plugin mounts the host's / at /host with HostToContainer;
# containerd refuses both on a private mount ("path / is mounted on / but it
# is not a shared or slave mount"). The peer groups are the node's own (its
# namespace was made with private propagation): nothing reaches the host.
if [ -n "$KUBELET" ]; then
	mount --make-rshared /
fi
cp "$INIT" /run/gpuctl-rig/init
# Last: the node's /tmp hides the host's (and with it, usually, the rig's
# state folder; nothing below needs it).
mount --bind "$FS/tmp" /tmp
echo "$NAME" >/run/gpuctl-rig/ready
exec /run/gpuctl-rig/init
