# Shared by tests/rig/{up,down,exec,check-nvidia-runtime} (sourced, not run).
# shellcheck shell=bash

RIG_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RIG_ROOT=$(cd "$RIG_HERE/../.." && pwd)
RIG_DIR=${GPUCTL_RIG_DIR:-/tmp/gpuctl-rig}
RIG_DIR=${RIG_DIR%/}
RIG_CACHE_ROOT=${GPUCTL_CACHE:-${HOME:-/root}/.cache/gpuctl}
RIG_CACHE=$RIG_CACHE_ROOT/rig
RIG_FIXTURES=$RIG_ROOT/tests/fixtures/nvidia-smi/h100-80gb-hbm3
RIG_NS=$RIG_DIR/ns              # persisted mount/UTS namespaces (a private bind mount)
RIG_BRIDGE=gpuctl-br0
RIG_NET=10.77.0
RIG_HOST_IP=$RIG_NET.1
RIG_NETNS_PREFIX=gpuctl-rig-    # ip netns names: gpuctl-rig-<node>
RIG_VETH_PREFIX=gpuctl-v        # host-side veth: gpuctl-v<index>
RIG_CRICTL_VERSION=v1.34.0
# the real NVIDIA Container Toolkit CLI, on ctk-gpu-node (GPUCTL_RIG_CTK=1)
RIG_CTK_VERSION=v1.17.8
# containerd 2.x (config version 3) on containerd2-gpu-node (GPUCTL_RIG_CONTAINERD2=1):
# Debian 12 ships 1.6, so containerd, its runc shim and ctr are built from the Go module
RIG_CONTAINERD2_VERSION=v2.2.9
RIG_PAUSE_IMAGE=localhost/gpuctl-rig/pause:1
RIG_BUSYBOX_IMAGE=localhost/gpuctl-rig/busybox:1
RIG_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RIG_MAX_GPU_NODES=180
# what every rig node's replayed nvidia-smi reports (tests/fixtures/nvidia-smi/h100-80gb-hbm3), as GFD writes it
RIG_GPU_PRODUCT=NVIDIA-H100-80GB-HBM3
RIG_EXTRAS=(k3s-gpu-node rke2-gpu-node ctk-gpu-node containerd2-gpu-node ctk-containerd2-gpu-node kubelet-gpu-node-1 kubelet-gpu-node-2) # optional, not in the cluster's own node set
RIG_FAULTS=(fault-broken-driver fault-old-driver fault-unknown-hostkey fault-hang fault-bad-config fault-restart-fails)
RIG_PYTHON=python3
[ -x /usr/bin/python3 ] && RIG_PYTHON=/usr/bin/python3

rig_log() { printf '%s: %s\n' "${RIG_PROG:-rig}" "$*" >&2; }
rig_die() { rig_log "ERROR: $*"; exit 1; }

# Serialises up and down on one state folder (the lock file lives beside it).
rig_lock() {
	mkdir -p "$(dirname "$RIG_DIR")"
	exec 7>"$RIG_DIR.lock"
	if ! flock -n 7; then
		rig_log "another up/down on $RIG_DIR is running; waiting for it"
		flock 7
	fi
}

rig_netns() { echo "$RIG_NETNS_PREFIX$1"; }

# rig_delete_cluster_node KUBECTL KUBECONFIG NAME: deletes the rig node's Node
# and, when there was one, the pods bound to it (the node is gone for good, and
# pod GC would take a minute, holding up the deletion of their namespaces).
rig_delete_cluster_node() {
	local out
	out=$("$1" --kubeconfig="$2" --request-timeout=10s delete node "$3" --ignore-not-found --wait=false 2>/dev/null) || return 0
	[ -n "$out" ] || return 0
	"$1" --kubeconfig="$2" --request-timeout=20s delete pods --all-namespaces --field-selector "spec.nodeName=$3" \
		--force --grace-period=0 >/dev/null 2>&1 || true
}

# Node facts, from the node's name: index, address, GPU count, flavour, fault.
# gpu-node-K: index K, 10.77.0.(10+K), 1 GPU (K=1), 4 (K=2), else 8 — the same
# GPU counts as tests/cluster's kwok nodes. fault-*: 10.77.0.201-206, 1 GPU.
rig_node_facts() { # NAME -> sets N_IDX N_ADDR N_GPUS N_FLAVOUR N_FAULT
	local name=$1 k i
	N_FLAVOUR=containerd1 N_FAULT=none N_GPUS=1
	case $name in
	gpu-node-*)
		k=${name#gpu-node-}
		[[ $k =~ ^[1-9][0-9]*$ ]] && ((k <= RIG_MAX_GPU_NODES)) || return 1
		N_IDX=$k N_ADDR=$RIG_NET.$((10 + k))
		case $k in 1) N_GPUS=1 ;; 2) N_GPUS=4 ;; *) N_GPUS=8 ;; esac ;;
	fault-*)
		for i in "${!RIG_FAULTS[@]}"; do
			if [ "${RIG_FAULTS[i]}" = "$name" ]; then
				N_IDX=$((201 + i)) N_ADDR=$RIG_NET.$((201 + i)) N_FAULT=${name#fault-}
				return 0
			fi
		done
		return 1 ;;
	k3s-gpu-node) N_IDX=200 N_ADDR=$RIG_NET.200 N_FLAVOUR=k3s ;;
	rke2-gpu-node) N_IDX=196 N_ADDR=$RIG_NET.196 N_FLAVOUR=rke2 ;;
	ctk-gpu-node) N_IDX=199 N_ADDR=$RIG_NET.199 ;;
	containerd2-gpu-node) N_IDX=198 N_ADDR=$RIG_NET.198 N_FLAVOUR=containerd2 ;;
	ctk-containerd2-gpu-node) N_IDX=197 N_ADDR=$RIG_NET.197 N_FLAVOUR=containerd2 ;;
	# real kubelets (lib/kubelet.sh): 1 and 2 GPUs
	kubelet-gpu-node-1) N_IDX=190 N_ADDR=$RIG_NET.190 ;;
	kubelet-gpu-node-2) N_IDX=191 N_ADDR=$RIG_NET.191 N_GPUS=2 ;;
	*) return 1 ;;
	esac
}

# Paths of a node's containerd, by flavour.
rig_flavour_paths() { # FLAVOUR -> sets F_UNIT F_CONFIG F_SOCKET F_ROOT F_STATE
	case $1 in
	k3s)
		F_UNIT=k3s
		F_CONFIG=/var/lib/rancher/k3s/agent/etc/containerd/config.toml
		F_SOCKET=/run/k3s/containerd/containerd.sock
		F_ROOT=/var/lib/rancher/k3s/agent/containerd
		F_STATE=/run/k3s/containerd ;;
	rke2) # an agent node: rke2 runs containerd on k3s's socket path
		F_UNIT=rke2-agent
		F_CONFIG=/var/lib/rancher/rke2/agent/etc/containerd/config.toml
		F_SOCKET=/run/k3s/containerd/containerd.sock
		F_ROOT=/var/lib/rancher/rke2/agent/containerd
		F_STATE=/run/k3s/containerd ;;
	*)
		F_UNIT=containerd
		F_CONFIG=/etc/containerd/config.toml
		F_SOCKET=/run/containerd/containerd.sock
		F_ROOT=/var/lib/containerd
		F_STATE=/run/containerd ;;
	esac
}

rig_node_exists() {
	[ -f "$RIG_DIR/nodes/$1/spec" ] && [ -e "/run/netns/$(rig_netns "$1")" ] &&
		mountpoint -q "$RIG_NS/$1.mnt" 2>/dev/null && mountpoint -q "$RIG_NS/$1.pid" 2>/dev/null
}

# rig_nsenter NODE CMD...: CMD in the node's network, mount, UTS and PID namespaces,
# as root, with a login-like environment.
rig_nsenter() {
	local node=$1
	shift
	exec nsenter --net="/run/netns/$(rig_netns "$node")" --mount="$RIG_NS/$node.mnt" --uts="$RIG_NS/$node.uts" \
		--pid="$RIG_NS/$node.pid" --wd=/ -- \
		env -i PATH="$RIG_PATH" HOME=/root USER=root LOGNAME=root SHELL=/bin/bash LANG=C.UTF-8 \
		${TERM:+TERM="$TERM"} "$@"
}

rig_in_node() { (exec 7>&- 9>&- && rig_nsenter "$@"); }

# The network namespace inode of a node (for finding its processes).
rig_netns_inode() { stat -L -c %i "/run/netns/$(rig_netns "$1")" 2>/dev/null; }

# Host pids of the node's processes: those in its PID namespace (everything
# started inside it, containers included) or its network namespace (the
# unshare that holds pid 1, anything entered without the PID namespace).
rig_node_pids() {
	local netino pidino
	netino=$(rig_netns_inode "$1") || netino=
	pidino=$(stat -L -c %i "$RIG_NS/$1.pid" 2>/dev/null) || pidino=
	mountpoint -q "$RIG_NS/$1.pid" 2>/dev/null || pidino=
	[ -n "$netino$pidino" ] || return 0
	find /proc/[0-9]*/ns/net /proc/[0-9]*/ns/pid -maxdepth 0 \
		\( -lname "net:\[${netino:-none}\]" -o -lname "pid:\[${pidino:-none}\]" \) 2>/dev/null |
		cut -d/ -f3 | sort -u
	return 0
}
