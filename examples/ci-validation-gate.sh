#!/bin/sh
# The validation gate, from a CI job or a node-provisioning pipeline: new GPU
# nodes carry the taint gpuctl.io/unvalidated=true:NoSchedule from the moment
# they are labelled, so no workload lands on them; `gpuctl validate --admit`
# removes it from each node whose checks pass (and leaves it on the others),
# then the job fails if any node failed.  See gpuctl-taint(1) and
# gpuctl-validate(1).
#
# usage: examples/ci-validation-gate.sh [REPORT [NODE...]]
#   examples/ci-validation-gate.sh gpuctl-gate.xml gpu-node-7 gpu-node-8
#
# GPUCTL names the binary (default: gpuctl on the PATH); GPUCTL_INVENTORY an
# inventory file (gpuctl-inventory(5)) when nodes are not reached at their
# InternalIP as root.
set -u
gpuctl=${GPUCTL:-gpuctl}
report=${1:-gpuctl-gate.xml}
[ $# -gt 0 ] && shift
inv=${GPUCTL_INVENTORY:+--inventory $GPUCTL_INVENTORY}

# 1. New nodes: the default labels and taints, and the gate's taint (a second
#    run changes nothing, so this is safe on every pipeline run).
"$gpuctl" label "$@" || exit $?
"$gpuctl" taint --until-validated "$@" || exit $?

# 2. Prepare them (containerd's nvidia runtime over SSH, the RuntimeClass, the
#    device plugin).
# shellcheck disable=SC2086
"$gpuctl" deploy $inv "$@" || exit $?

# 3. Check every node; admit those that pass (warnings fail with --strict).
status=0
# shellcheck disable=SC2086
"$gpuctl" validate $inv --admit --strict --junit "$report" "$@" || status=$?
case $status in
0) echo "gpuctl: every node passed and was admitted (JUnit report: $report)" ;;
1) echo "gpuctl: some nodes failed and keep the taint gpuctl.io/unvalidated (JUnit report: $report)" >&2 ;;
*) echo "gpuctl: the gate could not run (exit $status)" >&2 ;;
esac
exit $status
