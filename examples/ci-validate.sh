#!/bin/sh
# Validate the GPU platform from a CI job: `gpuctl validate` checks the cluster
# through the API and every GPU node over SSH, changing nothing.  Its exit
# status fails the job; the JUnit report feeds the CI's test view (GitLab:
# artifacts:reports:junit; Jenkins: the junit step; GitHub Actions: see
# github-actions-validate.yaml).  See gpuctl-validate(1).
#
# usage: examples/ci-validate.sh [REPORT [gpuctl validate flags and nodes...]]
#   examples/ci-validate.sh
#   examples/ci-validate.sh gpuctl-validate.xml --inventory inventory.yaml --min-driver 535
#
# The cluster comes from KUBECONFIG (or ~/.kube/config, or the pod's service
# account); an encrypted SSH key's passphrase from GPUCTL_SSH_PASSPHRASE.
# GPUCTL names the binary (default: gpuctl on the PATH).
set -u

report=${1:-gpuctl-validate.xml}
[ $# -gt 0 ] && shift

# The report is written (atomically) whatever the results, even when the
# cluster cannot be reached; only a usage error writes none.
status=0
"${GPUCTL:-gpuctl}" validate --junit "$report" "$@" || status=$?

case $status in
0) echo "gpuctl validate: no check failed (JUnit report: $report)" ;;
1) echo "gpuctl validate: some checks failed (JUnit report: $report)" >&2 ;;
2) echo "gpuctl validate: usage error or bad inventory; no report written" >&2 ;;
3) echo "gpuctl validate: the cluster cannot be reached or refuses the credentials (JUnit report: $report)" >&2 ;;
esac
exit "$status"
