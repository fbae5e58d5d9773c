# shellcheck shell=bash
# Shared by tests/cluster/up and tests/cluster/down (sourced, not run).

STATE=${GPUCTL_CLUSTER_DIR:-/tmp/gpuctl-cluster}
STATE=${STATE%/}
# Components in start order; down stops them in reverse. kwok (the simulated
# nodes) is left out with GPUCTL_CLUSTER_KWOK=0, for a cluster of real nodes.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler)
[ "${GPUCTL_CLUSTER_KWOK:-1}" = 0 ] || COMPONENTS+=(kwok)

log() { printf '%s: %s\n' "${PROG:-cluster}" "$*" >&2; }

# Serialises up and down on one state folder. The lock file lives beside the
# state folder so that removing the folder does not drop the lock.
lock_state() {
	mkdir -p "$(dirname "$STATE")"
	exec 8>"$STATE.lock"
	if ! flock -n 8; then
		log "another up/down on $STATE is running; waiting for it"
		flock 8
	fi
}

# pid_of NAME: prints the pid of component NAME if the pid file names a live
# process that we started (its command line mentions our state folder), else
# fails. This keeps a stale pid file from ever pointing us at a stranger.
pid_of() {
	local f=$STATE/run/$1.pid pid
	[ -f "$f" ] || return 1
	pid=$(cat "$f" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[ -r "/proc/$pid/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$STATE/" || return 1
	# A zombie is as good as gone.
	[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
	echo "$pid"
}

# stop_all: SIGTERM every component we started (reverse order), wait up to
# 10 s, then SIGKILL what is left. Never fails.
stop_all() {
	local i name pid pids=() t
	for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
		name=${COMPONENTS[i]}
		if pid=$(pid_of "$name"); then
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$name:$pid")
		fi
	done
	for ((t = 0; t < 100; t++)); do
		local alive=0
		for entry in "${pids[@]}"; do
			pid_of "${entry%%:*}" >/dev/null && alive=1
		done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for entry in "${pids[@]}"; do
		if pid=$(pid_of "${entry%%:*}"); then
			log "${entry%%:*} (pid $pid) did not stop on SIGTERM; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	rm -f "$STATE"/run/*.pid 2>/dev/null || true
}
