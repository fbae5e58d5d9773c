# Node life cycle: create, start, check, destroy (sourced by up and down).
# shellcheck shell=bash

RIG_PASSPHRASE=gpuctl-rig-passphrase
RIG_USER_PASSWORD=gpuctl-rig-password
# SHA-512 crypt of RIG_USER_PASSWORD (fixed salt: the same on every node)
RIG_USER_PASSWORD_HASH='$6$gpuctlrig$DBwcIc2VUl7bAJkAsRnStYcAq6gp0amfElmCeZbmknxT4l0AAGIkbECR29yy1Sa/QADJMCKn/33A3Eiaykof0.'

# ---------------------------------------------------------------- host side
rig_bridge_up() {
	if ! ip link show "$RIG_BRIDGE" >/dev/null 2>&1; then
		ip link add "$RIG_BRIDGE" type bridge
		ip addr add "$RIG_HOST_IP/24" dev "$RIG_BRIDGE"
	fi
	ip link set "$RIG_BRIDGE" up
}

rig_ns_dir_up() {
	mkdir -p "$RIG_NS"
	if ! mountpoint -q "$RIG_NS"; then
		mount --bind "$RIG_NS" "$RIG_NS"
		mount --make-private "$RIG_NS"
	fi
}

# The rig's client keys: ed25519 (plain), ecdsa (encrypted, OpenSSH and PEM
# formats), rsa (plain).
rig_client_keys() {
	local k=$RIG_DIR/keys
	mkdir -p "$k"
	chmod 700 "$k"
	[ -f "$k/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C gpuctl-rig -f "$k/id_ed25519"
	[ -f "$k/id_ecdsa_enc" ] || ssh-keygen -q -t ecdsa -b 256 -N "$RIG_PASSPHRASE" -C gpuctl-rig-ecdsa-enc -f "$k/id_ecdsa_enc"
	if [ ! -f "$k/id_ecdsa_enc_pem" ]; then
		cp "$k/id_ecdsa_enc" "$k/id_ecdsa_enc_pem.tmp"
		ssh-keygen -q -p -m PEM -P "$RIG_PASSPHRASE" -N "$RIG_PASSPHRASE" -f "$k/id_ecdsa_enc_pem.tmp" >/dev/null
		mv "$k/id_ecdsa_enc_pem.tmp" "$k/id_ecdsa_enc_pem"
		cp "$k/id_ecdsa_enc.pub" "$k/id_ecdsa_enc_pem.pub"
	fi
	[ -f "$k/id_rsa" ] || ssh-keygen -q -t rsa -b 3072 -N '' -C gpuctl-rig-rsa -f "$k/id_rsa"
	cat "$k/id_ed25519.pub" "$k/id_ecdsa_enc.pub" "$k/id_rsa.pub" >"$k/authorized_keys"
	printf '%s\n' "$RIG_PASSPHRASE" >"$k/passphrase"
}

# Host keys are cached per node name, so that known_hosts stays valid across
# down/up (generating 3 keys for 50 nodes costs seconds).
rig_host_keys() { # NAME DEST_DIR
	local c=$RIG_CACHE/hostkeys/$1 t
	if [ ! -f "$c/ssh_host_rsa_key.pub" ]; then
		mkdir -p "$c.tmp.$$"
		for t in ed25519 ecdsa rsa; do
			ssh-keygen -q -t $t -N '' -C "root@$1" -f "$c.tmp.$$/ssh_host_${t}_key"
		done
		rm -rf "$c"
		mv "$c.tmp.$$" "$c"
	fi
	cp -p "$c"/ssh_host_* "$2/"
}

rig_free_uid() { # PASSWD_FILE GROUP_FILE: first uid from 1500 such that it and the next are free as uids and gids
	local u=1500
	while awk -F: -v u=$u '$3 == u || $3 == u + 1 { f = 1 } END { exit !f }' "$1" "$2"; do u=$((u + 1)); done
	echo $u
}

rig_prepare_fs() { # NAME (facts set)
	local name=$1 N=$RIG_DIR/nodes/$1 FS=$RIG_DIR/nodes/$1/fs d uid
	rig_flavour_paths "$N_FLAVOUR"
	mkdir -p "$FS"
	for d in etc var-lib root; do mkdir -p "$FS/$d.upper" "$FS/$d.work"; done
	mkdir -p "$FS/containerd-root" "$FS/home" "$FS/usr-local/bin" "$FS/usr-local/sbin" \
		"$FS/usr-local/share/gpuctl-rig/original" "$FS/log" "$FS/run/sshd" "$FS/run/gpuctl-rig" "$FS/run/lock" \
		"$FS/tmp" "$FS/proc-driver" "$FS/var-lib.upper/containerd"
	chmod 1777 "$FS/tmp" "$FS/run/lock"
	chmod 755 "$FS/run/sshd" "$FS/run" "$FS/usr-local" "$FS/home" "$FS/log"
	chmod 700 "$FS/root.upper"

	# /etc
	local E=$FS/etc.upper
	echo "$name" >"$E/hostname"
	cat >"$E/hosts" <<EOF
127.0.0.1	localhost
127.0.1.1	$name
$N_ADDR	$name

::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
EOF
	cp -p /etc/passwd /etc/group /etc/shadow /etc/gshadow "$E/"
	uid=$(rig_free_uid /etc/passwd /etc/group)
	echo "gpuadmin:x:$uid:$uid:gpuctl rig admin,,,:/home/gpuadmin:/bin/bash" >>"$E/passwd"
	echo "gpuadmin:*:20000:0:99999:7:::" >>"$E/shadow"
	echo "gpuadmin:x:$uid:" >>"$E/group"
	echo "gpuadmin:!::" >>"$E/gshadow"
	# gpuuser: key login too, but its sudo wants a password (RIG_USER_PASSWORD)
	local uid2=$((uid + 1))
	echo "gpuuser:x:$uid2:$uid2:gpuctl rig user (sudo with password),,,:/home/gpuuser:/bin/bash" >>"$E/passwd"
	echo "gpuuser:$RIG_USER_PASSWORD_HASH:20000:0:99999:7:::" >>"$E/shadow"
	echo "gpuuser:x:$uid2:" >>"$E/group"
	echo "gpuuser:!::" >>"$E/gshadow"
	mkdir -p "$E/sudoers.d"
	printf '%s\n' "gpuadmin ALL=(ALL:ALL) NOPASSWD: ALL" "gpuuser ALL=(ALL:ALL) ALL" >"$E/sudoers.d/gpuctl-rig"
	chmod 440 "$E/sudoers.d/gpuctl-rig"

	mkdir -p "$E/ssh/sshd_config.d"
	rig_host_keys "$name" "$E/ssh"
	cat >"$E/ssh/sshd_config.d/gpuctl-rig.conf" <<EOF
# gpuctl test rig: this node's sshd (Debian's sshd_config includes this first).
ListenAddress $N_ADDR
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxStartups 200:30:400
MaxSessions 64
EOF

	mkdir -p "$E/containerd"
	if [ "$N_FLAVOUR" = containerd2 ]; then
		cp "$RIG_HERE/lib/containerd2-config.toml" "$E/containerd/config.toml"
		chmod 644 "$E/containerd/config.toml"
	elif [ "$N_FLAVOUR" = containerd1 ]; then
		if [ "$N_FAULT" = bad-config ]; then
			cp "$RIG_HERE/lib/containerd-config-broken.toml" "$E/containerd/config.toml"
		else
			cp "$RIG_HERE/lib/containerd-config.toml" "$E/containerd/config.toml"
		fi
		chmod 644 "$E/containerd/config.toml"
	else
		# k3s and rke2: their containerd config lives under /var/lib/rancher/<flavour>;
		# /etc/containerd is the (empty) one of Debian's containerd package.
		local K=$FS/var-lib.upper/rancher/$N_FLAVOUR/agent
		mkdir -p "$K/etc/containerd" "$K/containerd" "$FS/$N_FLAVOUR-containerd-root" "$FS/run/k3s/containerd"
		cp "$RIG_HERE/lib/$N_FLAVOUR-base-config.toml" "$K/etc/containerd/config.toml"
		cp "$RIG_HERE/lib/$N_FLAVOUR-base-config.toml" "$FS/usr-local/share/gpuctl-rig/k3s-base-config.toml"
	fi
	mkdir -p "$E/nvidia-container-runtime"
	cp "$RIG_HERE/lib/nvidia-container-runtime-config.toml" "$E/nvidia-container-runtime/config.toml"
	cat >"$E/crictl.yaml" <<EOF
runtime-endpoint: unix://$F_SOCKET
image-endpoint: unix://$F_SOCKET
timeout: 10
EOF

	# authorized keys: root, gpuadmin, gpuuser
	mkdir -p "$FS/root.upper/.ssh"
	chmod 700 "$FS/root.upper/.ssh"
	cp "$RIG_DIR/keys/authorized_keys" "$FS/root.upper/.ssh/authorized_keys"
	chmod 600 "$FS/root.upper/.ssh/authorized_keys"
	local u id
	for u in gpuadmin:$uid gpuuser:$uid2; do
		id=${u#*:} u=${u%%:*}
		mkdir -p "$FS/home/$u/.ssh"
		cp "$RIG_DIR/keys/authorized_keys" "$FS/home/$u/.ssh/authorized_keys"
		cp /etc/skel/.bashrc /etc/skel/.profile "$FS/home/$u/" 2>/dev/null || true
		chmod 700 "$FS/home/$u" "$FS/home/$u/.ssh"
		chmod 600 "$FS/home/$u/.ssh/authorized_keys"
		chown -R "$id:$id" "$FS/home/$u"
	done

	# /usr/local: the stand-ins and the replay data
	local S=$RIG_HERE/standins U=$FS/usr-local
	cp "$S/nvidia-smi" "$S/nvidia-cuda-mps-control" "$S/nvidia-container-runtime" "$S/systemctl" "$S/journalctl" "$U/bin/"
	# inside the node the checkout may be hidden (its /tmp, /home are private): copy what runs there
	mkdir -p "$U/share/gpuctl-rig"
	cp "$RIG_HERE/lib/hang-listener.py" "$U/share/gpuctl-rig/hang-listener.py"
	[ -e /proc/modules ] || cp "$S/lsmod" "$U/bin/"
	case $name in ctk-*) cp "$RIG_CTK_BIN" "$U/bin/nvidia-ctk" ;; esac
	if rig_is_kubelet_node "$name"; then rig_kubelet_prepare_fs "$name" "$FS"; fi
	if [ "$N_FLAVOUR" = containerd2 ]; then
		# node-setup.sh binds these over the node's /usr/bin/{containerd,containerd-shim-runc-v2,ctr}
		mkdir -p "$U/share/gpuctl-rig/containerd2"
		cp "$RIG_CONTAINERD2_DIR/containerd" "$RIG_CONTAINERD2_DIR/containerd-shim-runc-v2" "$RIG_CONTAINERD2_DIR/ctr" \
			"$U/share/gpuctl-rig/containerd2/"
	fi
	# the CUDA driver stand-in where a driver root keeps it; the runtime stand-in mounts it into GPU containers
	if [ "$N_FAULT" != broken-driver ] && [ -n "${RIG_CUDA_DIR:-}" ]; then
		mkdir -p "$U/nvidia/lib64"
		cp "$RIG_CUDA_DIR/libcuda.so.1" "$U/nvidia/lib64/libcuda.so.1"
	fi
	: >"$U/bin/crictl"
	chmod 755 "$U/bin/"* "$U/sbin/"* 2>/dev/null || true
	local gen=(--node "$name" --gpus "$N_GPUS")
	[ "$name" = gpu-node-1 ] && gen+=(--keep-uuid)
	case $N_FAULT in
	broken-driver) gen+=(--mode broken) ;;
	old-driver) gen+=(--driver 450.248.02 --cuda 11.0) ;;
	esac
	"$RIG_PYTHON" "$RIG_HERE/lib/gen-nvidia.py" "$RIG_FIXTURES" "$U/share/nvidia-smi-replay" "${gen[@]}"
	# what the driver shows in procfs: nvidia/version, nvidia-caps/mig-minors
	if [ -d "$U/share/nvidia-smi-replay/proc-driver/nvidia" ]; then
		cp -r "$U/share/nvidia-smi-replay/proc-driver/." "$FS/proc-driver/"
	fi
	if [ -e /proc/modules ]; then
		cat "$U/share/nvidia-smi-replay/modules.txt" /proc/modules >"$FS/proc-modules"
	fi

	cat >"$U/share/gpuctl-rig/node.env" <<EOF
# gpuctl test rig: facts about this simulated node (read by the stand-ins)
NODE=$name
ADDRESS=$N_ADDR
GPUS=$N_GPUS
FLAVOUR=$N_FLAVOUR
FAULT=$N_FAULT
UNIT=$F_UNIT
DESCRIPTION="$(case $N_FLAVOUR in k3s) echo "Lightweight Kubernetes" ;; rke2) echo "Rancher Kubernetes Engine v2 (agent)" ;; *) echo "containerd container runtime" ;; esac)"
CONFIG=$F_CONFIG
SOCKET=$F_SOCKET
K3S_CONFIG_DIR=$(dirname "$F_CONFIG")
EXEC_START="/usr/bin/containerd$(case $N_FLAVOUR in k3s | rke2) echo " --config $F_CONFIG --address $F_SOCKET --root $F_ROOT --state $F_STATE" ;; esac)"
EOF
	# The configuration the node boots with, byte for byte.
	if [ "$N_FLAVOUR" = k3s ] || [ "$N_FLAVOUR" = rke2 ]; then
		cp "$RIG_HERE/lib/$N_FLAVOUR-base-config.toml" "$U/share/gpuctl-rig/original/config.toml"
	else
		cp "$E/containerd/config.toml" "$U/share/gpuctl-rig/original/config.toml"
	fi
	cp "$U/share/gpuctl-rig/original/config.toml" "$N/original-config.toml"
}

rig_create_node() { # NAME
	local name=$1 N=$RIG_DIR/nodes/$1 netns
	rig_node_facts "$name" || rig_die "unknown node name $name"
	netns=$(rig_netns "$name")
	rm -rf "$N"
	mkdir -p "$N"
	rig_prepare_fs "$name"

	ip netns add "$netns"
	# A fixed MAC per node index: the host's ARP entry stays right when a
	# node is recreated (a stale one delays its first connections by seconds).
	ip link add "$RIG_VETH_PREFIX$N_IDX" type veth peer name eth0 netns "$netns" \
		address "$(printf '02:67:70:75:%02x:%02x' $((N_IDX / 256)) $((N_IDX % 256)))"
	ip neigh flush to "$N_ADDR" dev "$RIG_BRIDGE" 2>/dev/null || true
	ip link set "$RIG_VETH_PREFIX$N_IDX" master "$RIG_BRIDGE" up
	ip -n "$netns" link set lo up
	ip -n "$netns" addr add "$N_ADDR/24" dev eth0
	ip -n "$netns" link set eth0 up
	ip -n "$netns" route add default via "$RIG_HOST_IP"

	touch "$RIG_NS/$name.mnt" "$RIG_NS/$name.uts" "$RIG_NS/$name.pid"
	# The node's pid 1 (node-setup.sh, then rig-init) runs detached; its
	# parent, unshare, waits for it in the host's PID namespace.
	(
		exec 7>&- 9>&-
		exec setsid nsenter --net="/run/netns/$netns" -- \
			unshare --mount="$RIG_NS/$name.mnt" --uts="$RIG_NS/$name.uts" --pid="$RIG_NS/$name.pid" \
			--fork --propagation private \
			sh "$RIG_HERE/lib/node-setup.sh" "$N" "$name" "$RIG_NS" "$RIG_INIT" \
			"$RIG_CACHE/crictl-$RIG_CRICTL_VERSION/crictl" "${RIG_KUBELET_BIN:-}" </dev/null >>"$N/setup.log" 2>&1
	) &
	local i
	for ((i = 0; i < 200; i++)); do
		[ -s "$N/fs/run/gpuctl-rig/ready" ] && break
		sleep 0.05
	done
	if [ ! -s "$N/fs/run/gpuctl-rig/ready" ]; then
		rig_log "$name: the node's namespaces were not set up:"
		cat "$N/setup.log" >&2
		return 1
	fi
	rig_want_spec "$name" >"$N/spec"
}

# What a node is made of: its facts and the rig's code (a node made by older
# stand-ins or configs is recreated by the next up).
rig_want_spec() {
	rig_node_facts "$1" &&
		echo "NAME=$1 IDX=$N_IDX ADDR=$N_ADDR GPUS=$N_GPUS FLAVOUR=$N_FLAVOUR FAULT=$N_FAULT CODE=${RIG_CODE_HASH:-?}"
}

# The process named by a pid file in the node's /run is alive (pids are the
# node's own: it has its own PID namespace).
rig_node_pidfile_alive() { # NAME PATH_IN_NODE
	rig_in_node "$1" sh -c 'p=$(cat "$0" 2>/dev/null) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null && ! grep -q "^State:.*Z" "/proc/$p/status"' "$2"
}

rig_ssh_banner() { # ADDR: the SSH banner arrives within 5 s (sshd re-executes itself for each
	# connection, which takes seconds on a loaded machine)
	timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/22" && head -c 8 <&3' "$1" 2>/dev/null | grep -q '^SSH-2.0-'
}

rig_start_services() { # NAME
	local name=$1 i
	rig_node_facts "$name"
	rig_flavour_paths "$N_FLAVOUR"
	if [ "$N_FAULT" = hang ]; then
		if ! rig_node_pidfile_alive "$name" /run/gpuctl-rig/hang.pid >/dev/null; then
			rig_in_node "$name" setsid -f "$RIG_PYTHON" /usr/local/share/gpuctl-rig/hang-listener.py "$N_ADDR" 22 /run/gpuctl-rig/hang.pid \
				</dev/null >>"$RIG_DIR/nodes/$name/fs/log/hang-listener.log" 2>&1
			for ((i = 0; i < 100; i++)); do
				rig_node_pidfile_alive "$name" /run/gpuctl-rig/hang.pid >/dev/null && break
				sleep 0.05
			done
			if ! rig_node_pidfile_alive "$name" /run/gpuctl-rig/hang.pid >/dev/null; then
				echo "rig: $name: the hang listener did not start:" >&2
				tail -n 5 "$RIG_DIR/nodes/$name/fs/log/hang-listener.log" >&2
				return 1
			fi
		fi
	elif ! rig_node_pidfile_alive "$name" /run/sshd.pid >/dev/null; then
		local try
		for try in 1 2; do
			rig_in_node "$name" /usr/sbin/sshd -E /var/log/sshd.log </dev/null >/dev/null 2>&1 ||
				{ rig_log "$name: sshd failed to start:"; tail -5 "$RIG_DIR/nodes/$name/fs/log/sshd.log" >&2; return 1; }
			# up to 30 s: a loaded machine (the cluster deleting a thousand nodes) can be slow
			local until=$((SECONDS + 30))
			while ((SECONDS < until)); do
				rig_ssh_banner "$N_ADDR" && break
				sleep 0.1
			done
			rig_ssh_banner "$N_ADDR" && break
			# what was wrong (also kept in $RIG_DIR.log, which down leaves), then one more start
			{
				rig_log "$(date +%T) $name: sshd does not answer on $N_ADDR:22 (start $try); sshd alive: $(rig_node_pidfile_alive "$name" /run/sshd.pid >/dev/null && echo yes || echo no)"
				tail -n 5 "$RIG_DIR/nodes/$name/fs/log/sshd.log" 2>/dev/null | sed 's/^/    sshd.log: /'
				rig_in_node "$name" sh -c 'ip -br addr; ss -ltn' 2>&1 | sed 's/^/    node: /'
				ip -br link show "$RIG_VETH_PREFIX$N_IDX" 2>&1 | sed 's/^/    host: /'
				ip -br link show "$RIG_BRIDGE" 2>&1 | sed 's/^/    host: /'
				ip neigh show "$N_ADDR" 2>&1 | sed 's/^/    host: /'
			} 2>&1 | tee -a "$RIG_DIR.log" >&2
			[ "$try" = 1 ] || return 1
			rig_in_node "$name" sh -c 'p=$(cat /run/sshd.pid 2>/dev/null) && kill "$p"' 2>/dev/null || true
			sleep 0.5
		done
	fi
	if [ "$N_FAULT" = restart-fails ] && [ ! -s "$RIG_DIR/nodes/$name/fs/usr-local/share/gpuctl-rig/original-config-dump.toml" ]; then
		rig_in_node "$name" sh -c "containerd --config '$F_CONFIG' config dump >/usr/local/share/gpuctl-rig/original-config-dump.toml"
	fi
	if [ "$N_FAULT" = bad-config ]; then
		# containerd cannot parse its config: it failed at boot, as it would.
		if [ ! -e "$RIG_DIR/nodes/$name/fs/run/gpuctl-rig/$F_UNIT.state" ]; then
			rig_in_node "$name" systemctl start "$F_UNIT" >/dev/null 2>&1 && rig_log "$name: containerd started with a broken config?!"
		fi
		return 0
	fi
	rig_in_node "$name" systemctl start "$F_UNIT" >/dev/null || {
		rig_log "$name: containerd did not start; its log:"
		tail -n 15 "$RIG_DIR/nodes/$name/fs/log/$F_UNIT.log" | sed 's/^/    /' >&2
		return 1
	}
}

# Healthy: exists with the wanted spec, its sshd (or hang listener) runs and
# its containerd is active (not for fault-bad-config).
rig_node_healthy() { # NAME
	local name=$1
	rig_node_exists "$name" || return 1
	[ "$(cat "$RIG_DIR/nodes/$name/spec")" = "$(rig_want_spec "$name")" ] || return 1
	rig_node_facts "$name"
	rig_flavour_paths "$N_FLAVOUR"
	if [ "$N_FAULT" = hang ]; then
		rig_node_pidfile_alive "$name" /run/gpuctl-rig/hang.pid >/dev/null || return 1
	else
		rig_node_pidfile_alive "$name" /run/sshd.pid >/dev/null || return 1
	fi
	[ "$N_FAULT" = bad-config ] && return 0
	rig_in_node "$name" systemctl is-active -q "$F_UNIT"
}

# ---------------------------------------------------------------- destroy
rig_destroy_node() { # NAME: kills its processes, removes namespaces, veth, state
	local name=$1 netns pids t idx p
	netns=$(rig_netns "$name")
	# SIGKILL: when the node's pid 1 dies the kernel kills the rest of its
	# PID namespace anyway (containers included).
	for ((t = 0; t < 50; t++)); do
		pids=
		for p in $(rig_node_pids "$name"); do # zombies wait for their parent; skip them
			grep -qs '^State:[[:space:]]*[ZX]' "/proc/$p/status" || pids+="$p "
		done
		[ -n "${pids// /}" ] || break
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null || true
		sleep 0.1
	done
	for f in "$RIG_NS/$name.mnt" "$RIG_NS/$name.uts" "$RIG_NS/$name.pid"; do
		mountpoint -q "$f" 2>/dev/null && umount "$f" 2>/dev/null || umount -l "$f" 2>/dev/null || true
		rm -f "$f"
	done
	if [ -e "/run/netns/$netns" ]; then ip netns del "$netns" 2>/dev/null || true; fi
	idx=$(sed -n 's/.*IDX=\([0-9]*\).*/\1/p' "$RIG_DIR/nodes/$name/spec" 2>/dev/null)  || true
	if [ -n "$idx" ]; then ip link del "$RIG_VETH_PREFIX$idx" 2>/dev/null || true; fi
	# Container cgroups the node's runc made (all under /gpuctl-rig/<node>).
	local c
	for c in /sys/fs/cgroup/*/gpuctl-rig/"$name" /sys/fs/cgroup/gpuctl-rig/"$name"; do
		if [ -d "$c" ]; then find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
	done
	for ((t = 0; t < 20; t++)); do
		rm -rf "$RIG_DIR/nodes/$name" 2>/dev/null && break
		sleep 0.2
	done
	[ ! -e "$RIG_DIR/nodes/$name" ] || rig_log "could not remove $RIG_DIR/nodes/$name"
	return 0
}
