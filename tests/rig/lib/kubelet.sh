# Real kubelets on rig nodes (sourced by up and down): kubelet-gpu-node-K join
# the local cluster as real Nodes, so DaemonSets and pods really run there as
# containers on the node's containerd and runc (GPUCTL_RIG_KUBELET=1).
# shellcheck shell=bash
#
# What a kubelet node has beyond an ordinary rig node:
#   - the kubelet of the cluster's release (lib/build-kubelet), bind-mounted
#     at /usr/local/bin/kubelet; config in /etc/kubernetes; root /var/lib/kubelet
#     (the node's /var/lib overlay: the device-plugin socket path is fixed);
#     its own client certificate (CN system:node:<name>, O system:nodes,
#     signed by the cluster's CA), so the API server's Node authorizer
#     treats it as that node; its serving port 10250 accepts the API server's
#     kubelet-client certificate (x509 against the cluster CA) for logs/exec;
#   - CNI from Debian's containernetworking-plugins: a bridge (cni0) and
#     host-local addresses 10.200.<index>.0/24 in the node's network
#     namespace, masqueraded to the node's address, and routed to the node
#     from the host (the API server reaches pods: pods/proxy);
#   - the cgroup root /gpuctl-rig/<node>/kubelet in every cgroup hierarchy;
#   - host-wide kernel tunables the kubelet writes (vm.overcommit_memory,
#     kernel.panic, ...) are regular files bound over /proc/sys/... inside
#     the node (node-setup.sh), so the machine's values never change;
#   - the kubernetes Service (10.96.0.1:443): there is no kube-proxy; one DNAT
#     rule in the node's namespace sends it to the API server's forwarder
#     (10.77.0.1:6443, a socat on the host relaying to the loopback-only
#     API server), which is all that pods (the device plugin's
#     config-manager) need of kube-proxy;
#   - the NVML stand-in at /usr/local/nvidia/lib64/libnvidia-ml.so.1, which
#     the nvidia runtime stand-in mounts into GPU containers;
#   - images imported into containerd's k8s.io namespace: the rig's pause and
#     busybox, and the real NVIDIA device plugin (built from its module) under
#     its real name nvcr.io/nvidia/k8s-device-plugin:<version>; and, unless
#     GPUCTL_RIG_NFD=0, the real Node Feature Discovery (lib/build-nfd) as
#     registry.k8s.io/nfd/node-feature-discovery:<version> (nfd-master turns
#     GFD's NodeFeature objects into node labels; tests/fixtures/nfd deploys it).

RIG_KUBELET_NODES=(kubelet-gpu-node-1 kubelet-gpu-node-2)
RIG_API_FORWARD_PORT=6443
RIG_SERVICE_IP=10.96.0.1
# Host-wide tunables the kubelet sets (kubelet's setupKernelTunables and
# keyring limits); inside a kubelet node each is a file of the node's own.
RIG_KUBELET_SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
	kernel/keys/root_maxkeys kernel/keys/root_maxbytes)

rig_is_kubelet_node() { [[ $1 == kubelet-gpu-node-* ]]; }

# Files a kubelet node needs before its namespaces exist (rig_prepare_fs).
rig_kubelet_prepare_fs() { # NAME FS
	local name=$1 FS=$2 s
	rig_node_facts "$name"
	mkdir -p "$FS/etc.upper/cni/net.d" "$FS/sysctl" "$FS/usr-local/nvidia/lib64"
	for s in "${RIG_KUBELET_SYSCTLS[@]}"; do
		cat "/proc/sys/$s" >"$FS/sysctl/${s//\//.}"
	done
	: >"$FS/usr-local/bin/kubelet"
	chmod 755 "$FS/usr-local/bin/kubelet"
	cp "$RIG_NVML_DIR/libnvidia-ml.so.1" "$FS/usr-local/nvidia/lib64/libnvidia-ml.so.1"
	cat >"$FS/etc.upper/cni/net.d/10-gpuctl-rig.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "gpuctl-rig",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "10.200.$N_IDX.0/24"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "/var/lib/cni/networks"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

# The socat relay from the rig's bridge address to the loopback-only API
# server. Restarted when the API server's port changed (a new cluster).
rig_api_forward() { # API_PORT
	local port=$1 pidf=$RIG_DIR/api-forward.pid want p
	want="TCP-LISTEN:$RIG_API_FORWARD_PORT,bind=$RIG_HOST_IP,fork,reuseaddr TCP:127.0.0.1:$port"
	if p=$(cat "$pidf" 2>/dev/null) && [ -r "/proc/$p/cmdline" ] &&
		[ "$(tr '\0' ' ' <"/proc/$p/cmdline")" = "socat $want " ]; then
		return 0
	fi
	rig_api_forward_stop
	command -v socat >/dev/null || rig_die "socat is needed for kubelet nodes (run tests/install-deps)"
	# shellcheck disable=SC2086
	(exec 7>&- 8>&- 9>&- && exec setsid socat $want </dev/null >>"$RIG_DIR/api-forward.log" 2>&1) &
	echo $! >"$pidf"
	local i
	for ((i = 0; i < 50; i++)); do
		timeout 1 bash -c "exec 3<>/dev/tcp/$RIG_HOST_IP/$RIG_API_FORWARD_PORT" 2>/dev/null && return 0
		sleep 0.1
	done
	rig_die "the API server forwarder ($RIG_HOST_IP:$RIG_API_FORWARD_PORT) did not start: $(tail -3 "$RIG_DIR/api-forward.log")"
}

rig_api_forward_stop() {
	local pidf=$RIG_DIR/api-forward.pid p
	if p=$(cat "$pidf" 2>/dev/null) && [ -r "/proc/$p/cmdline" ] && tr '\0' ' ' <"/proc/$p/cmdline" | grep -q "^socat TCP-LISTEN:$RIG_API_FORWARD_PORT,bind=$RIG_HOST_IP"; then
		kill "$p" 2>/dev/null || true
	fi
	rm -f "$pidf"
}

# The cgroup root the kubelet runs pods under, in every hierarchy (v1) or
# in the unified tree (v2).
rig_kubelet_cgroups() { # NAME
	local name=$1 h d rel
	for h in /sys/fs/cgroup/*/; do
		h=${h%/}
		[ -f "$h/cgroup.procs" ] || continue
		[ "$h" = /sys/fs/cgroup/unified ] && continue
		d=$h
		for rel in gpuctl-rig "$name" kubelet; do
			d=$d/$rel
			if [ ! -d "$d" ]; then
				mkdir "$d"
				if [ -f "$d/cpuset.cpus" ]; then
					cat "$(dirname "$d")/cpuset.cpus" >"$d/cpuset.cpus"
					cat "$(dirname "$d")/cpuset.mems" >"$d/cpuset.mems"
				fi
			fi
		done
	done
	if [ -f /sys/fs/cgroup/cgroup.subtree_control ]; then # cgroup v2
		d=/sys/fs/cgroup
		for rel in gpuctl-rig "$name" kubelet; do
			for h in cpu cpuset memory pids io; do echo "+$h" >"$d/cgroup.subtree_control" 2>/dev/null || true; done
			d=$d/$rel
			mkdir -p "$d"
		done
	fi
}

# One image tarball per plugin version: the rig's busybox layer plus the
# plugin's binaries, named nvcr.io/nvidia/k8s-device-plugin:<version>.
rig_plugin_images() { # -> prints tarball paths
	local v dir tar
	for v in ${GPUCTL_RIG_PLUGIN_VERSIONS:-v0.19.3}; do
		dir=$("$RIG_HERE/lib/build-nvidia-plugin" "$v") || rig_die "building the NVIDIA device plugin $v failed"
		tar=$RIG_CACHE/plugin-image-$v-$(cat "$RIG_HERE/lib/build-images.py" /bin/busybox "$dir/bin/nvidia-device-plugin" | sha256sum | cut -c1-12).tar
		if [ ! -f "$tar" ]; then
			"$RIG_PYTHON" "$RIG_HERE/lib/build-images.py" "$(command -v busybox)" "$tar.tmp" --nvidia-plugin "$dir" "$v" ||
				rig_die "packing the device plugin image $v failed"
			mv "$tar.tmp" "$tar"
		fi
		echo "$tar"
	done
}

# The Node Feature Discovery image (nfd-master, built from its module), one
# tarball: registry.k8s.io/nfd/node-feature-discovery:<version>.
rig_nfd_image() { # -> prints the tarball's path
	local v=${GPUCTL_RIG_NFD_VERSION:-v0.18.3} dir tar
	dir=$("$RIG_HERE/lib/build-nfd" "$v") || rig_die "building Node Feature Discovery $v failed"
	tar=$RIG_CACHE/nfd-image-$v-$(cat "$RIG_HERE/lib/build-images.py" "$dir"/bin/* "$dir/nfd-worker.conf" | sha256sum | cut -c1-12).tar
	if [ ! -f "$tar" ]; then
		"$RIG_PYTHON" "$RIG_HERE/lib/build-images.py" --nfd "$dir" "$v" "$tar.tmp" ||
			rig_die "packing the Node Feature Discovery image $v failed"
		mv "$tar.tmp" "$tar"
	fi
	echo "$tar"
}

# Writes the kubelet's configuration and credentials into the node and starts
# it (or leaves a running one alone); the cluster must be up (cluster.env read).
rig_kubelet_start() { # NAME
	local name=$1 FS=$RIG_DIR/nodes/$1/fs pki=$GPUCTL_TEST_CLUSTER_DIR/pki st
	rig_node_facts "$name"
	st=$FS/usr-local/share/gpuctl-rig/kubelet
	mkdir -p "$st"
	rig_kubelet_cgroups "$name"
	if rig_node_pidfile_alive "$name" /run/gpuctl-rig/kubelet.pid >/dev/null; then
		return 0
	fi
	# a node made afresh joins as a new Node: the Node object of an earlier
	# node of that name (its labels, taints, capacity) is removed first
	if [ ! -f "$st/node.crt" ]; then
		"$KUBECTL" --kubeconfig="$KUBECONFIG" delete node "$name" --ignore-not-found --wait=true >/dev/null ||
			{ rig_log "$name: could not delete the Node of an earlier $name"; return 1; }
	fi
	# credentials: a client certificate for system:node:<name>
	if [ ! -f "$st/node.crt" ] || ! openssl verify -CAfile "$pki/ca.crt" "$st/node.crt" >/dev/null 2>&1; then
		openssl genrsa -traditional -out "$st/node.key" 2048 2>/dev/null
		openssl req -new -key "$st/node.key" -subj "/O=system:nodes/CN=system:node:$name" -out "$st/node.csr" \
			-config <(printf '[req]\ndistinguished_name=dn\n[dn]\n')
		openssl x509 -req -in "$st/node.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
			-set_serial "0x$(openssl rand -hex 16)" -days 3650 -sha256 -out "$st/node.crt" \
			-extfile <(printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n') 2>/dev/null
		rm -f "$st/node.csr"
	fi
	cp "$pki/ca.crt" "$st/ca.crt"
	cat >"$st/kubelet.conf" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: gpuctl-test
  cluster:
    server: https://$RIG_HOST_IP:$RIG_API_FORWARD_PORT
    certificate-authority: /etc/kubernetes/pki/ca.crt
    tls-server-name: kubernetes
contexts:
- name: node
  context: {cluster: gpuctl-test, user: node}
current-context: node
users:
- name: node
  user:
    client-certificate: /etc/kubernetes/pki/node.crt
    client-key: /etc/kubernetes/pki/node.key
EOF
	# What the machine allows (see shared probe notes in tests/rig/README.md):
	# no CAP_SYS_RESOURCE (oomScoreAdj 0), cgroup v1 allowed, host tunables
	# left alone (files of the node's own), no eviction or image GC (the
	# rig's images cannot be pulled again).
	cat >"$st/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: /gpuctl-rig/$name/kubelet
failCgroupV1: false
failSwapOn: false
protectKernelDefaults: false
oomScoreAdj: 0
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: /etc/kubernetes/pki/ca.crt}
authorization: {mode: AlwaysAllow}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
evictionHard: {memory.available: "0%", nodefs.available: "0%", imagefs.available: "0%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
nodeStatusUpdateFrequency: 10s
syncFrequency: 10s
EOF
	rig_in_node "$name" sh -c 'set -e
		mkdir -p /etc/kubernetes/pki /var/lib/kubelet
		st=/usr/local/share/gpuctl-rig/kubelet
		install -m 600 $st/node.key /etc/kubernetes/pki/node.key
		install -m 644 $st/node.crt $st/ca.crt /etc/kubernetes/pki/
		install -m 600 $st/kubelet.conf /etc/kubernetes/kubelet.conf
		install -m 644 $st/config.yaml /var/lib/kubelet/config.yaml' || return 1
	# the kubernetes Service, without kube-proxy
	rig_in_node "$name" sh -c "iptables -t nat -C PREROUTING -d $RIG_SERVICE_IP/32 -p tcp --dport 443 -j DNAT --to-destination $RIG_HOST_IP:$RIG_API_FORWARD_PORT 2>/dev/null ||
		iptables -t nat -A PREROUTING -d $RIG_SERVICE_IP/32 -p tcp --dport 443 -j DNAT --to-destination $RIG_HOST_IP:$RIG_API_FORWARD_PORT
		iptables -t nat -C OUTPUT -d $RIG_SERVICE_IP/32 -p tcp --dport 443 -j DNAT --to-destination $RIG_HOST_IP:$RIG_API_FORWARD_PORT 2>/dev/null ||
		iptables -t nat -A OUTPUT -d $RIG_SERVICE_IP/32 -p tcp --dport 443 -j DNAT --to-destination $RIG_HOST_IP:$RIG_API_FORWARD_PORT" ||
		{ rig_log "$name: the kubernetes Service rule could not be set (iptables)"; return 1; }
	# the node's pod addresses are routed to it from the host, as a cluster's
	# pod network routes them (host-gw style): the API server reaches pods
	# (pods/proxy: validate reads the DCGM exporter's metrics that way)
	ip route replace "10.200.$N_IDX.0/24" via "$N_ADDR" dev "$RIG_BRIDGE" ||
		{ rig_log "$name: the host route to its pods (10.200.$N_IDX.0/24) could not be set"; return 1; }
	# images
	local tar
	for tar in "$RIG_CACHE/images.tar" "${RIG_PLUGIN_IMAGES[@]}" "${RIG_NFD_IMAGES[@]}"; do
		rig_in_node "$name" ctr -n k8s.io images import - <"$tar" >/dev/null ||
			{ rig_log "$name: importing $(basename "$tar") failed"; return 1; }
	done
	rig_in_node "$name" sh -c 'setsid kubelet --config=/var/lib/kubelet/config.yaml --kubeconfig=/etc/kubernetes/kubelet.conf \
		--hostname-override="$0" --node-ip="$1" --root-dir=/var/lib/kubelet --cert-dir=/var/lib/kubelet/pki \
		--node-labels=nvidia.com/gpu.present=true,gpuctl.io/test-rig=kubelet --v=1 \
		</dev/null >>/var/log/kubelet.log 2>&1 & echo $! >/run/gpuctl-rig/kubelet.pid' "$name" "$N_ADDR"
}

# Waits until every kubelet node is a Ready Node of the cluster.
rig_kubelet_wait_ready() { # NAME...
	local deadline=$((SECONDS + 120)) n ready
	for n in "$@"; do
		while :; do
			ready=$("$KUBECTL" --kubeconfig="$KUBECONFIG" get node "$n" \
				-o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) || ready=
			[ "$ready" = True ] && break
			if ((SECONDS >= deadline)); then
				rig_log "$n: the kubelet did not make the node Ready in 120 s; last lines of its log:"
				tail -n 25 "$RIG_DIR/nodes/$n/fs/log/kubelet.log" | sed 's/^/    /' >&2
				return 1
			fi
			if ! rig_node_pidfile_alive "$n" /run/gpuctl-rig/kubelet.pid >/dev/null; then
				rig_log "$n: the kubelet exited; last lines of its log:"
				tail -n 25 "$RIG_DIR/nodes/$n/fs/log/kubelet.log" | sed 's/^/    /' >&2
				return 1
			fi
			sleep 0.5
		done
	done
}
