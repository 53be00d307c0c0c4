#!/usr/bin/env bash
# make e2e: the end-to-end suite (test/e2e, build tag e2e). It starts a
# control plane of its own with hack/dev.sh (etcd, kube-apiserver, two
# replicas of bin/manager with leader election behind hack/devproxy, the
# samples), runs the suite against it, and stops everything whatever
# happens. Its state and logs are in bin/e2e (E2E_DIR), wiped at each start
# and kept afterwards for inspection; its ports are its own, so a
# `make dev-up` on the default ports can run beside it.
# E2E_ACCESS_MODE=authorizer (make e2e-authorizer) runs the control plane
# in authorizer mode (hack/dev.sh's DEV_ACCESS_MODE: kube-apiserver with
# --authorization-config, the managers with --access-mode=authorizer) in
# bin/e2e-authorizer, and only the specs labelled "authorizer"; the default,
# bindings mode, runs all the others.
# Needs: go, kubectl, bin/manager and bin/kubectl-pim (make build), and
# kube-apiserver + etcd (make control-plane); `make e2e` sees to all.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

export DEV_ACCESS_MODE="${E2E_ACCESS_MODE:-bindings}"
case "${DEV_ACCESS_MODE}" in
  bindings) default_dir="${ROOT}/bin/e2e" label_filter='!authorizer' ;;
  authorizer) default_dir="${ROOT}/bin/e2e-authorizer" label_filter='authorizer' ;;
  *) echo "e2e: E2E_ACCESS_MODE must be bindings or authorizer" >&2; exit 1 ;;
esac
export DEV_DIR="${E2E_DIR:-${default_dir}}"
export DEV_ETCD_PORT="${E2E_ETCD_PORT:-23890}"
export DEV_ETCD_PEER_PORT="${E2E_ETCD_PEER_PORT:-23900}"
export DEV_APISERVER_PORT="${E2E_APISERVER_PORT:-26443}"
export DEV_KCM_PORT="${E2E_KCM_PORT:-20357}"
# Front (the webhook configurations' URL) 29443; replicas 29444, 29445.
export DEV_WEBHOOK_PORT="${E2E_WEBHOOK_PORT:-29443}"
# Replica i: metrics 28080+2i, probes 28081+2i.
export DEV_METRICS_PORT="${E2E_METRICS_PORT:-28080}"
export DEV_PROBE_PORT="${E2E_PROBE_PORT:-28081}"
export DEV_REPLICAS=2
# The RoleAssignment and ActivationRequest controllers delete bindings
# themselves; garbage collection is not needed, and starts are faster
# without kube-controller-manager.
export DEV_CONTROLLER_MANAGER=false
export DEV_CONSOLE=false
export DEV_SAMPLES=true
export DEV_TIMEOUT="${DEV_TIMEOUT:-120}"
# Short leader election so that takeover is measured in seconds. The retry
# period bounds how late a standby notices the leader is gone
# (docs/reliability.md).
export E2E_LEASE_DURATION="${E2E_LEASE_DURATION:-4s}"
export DEV_MANAGER_ARGS="--leader-elect-lease-duration=${E2E_LEASE_DURATION} --leader-elect-renew-deadline=${E2E_RENEW_DEADLINE:-3s} --leader-elect-retry-period=${E2E_RETRY_PERIOD:-200ms}"
export E2E=1

for tool in go kubectl setsid; do
  command -v "${tool}" >/dev/null || { echo "e2e: ${tool} is not on PATH" >&2; exit 1; }
done
[[ -x bin/manager && -x bin/kubectl-pim ]] || { echo "e2e: run 'make build' first (or 'make e2e')" >&2; exit 1; }

hack/dev.sh down >/dev/null 2>&1 || true
rm -rf "${DEV_DIR}"
mkdir -p "${DEV_DIR}"

on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if ((rc != 0)); then
    local f
    for f in "${DEV_DIR}"/manager*.log "${DEV_DIR}"/kube-apiserver.log; do
      [[ -f "${f}" ]] || continue
      echo "---- last lines of ${f} ----" >&2
      tail -n 40 "${f}" >&2
    done
  fi
  hack/dev.sh down
  echo "e2e: logs and figures in ${DEV_DIR}" >&2
  exit "${rc}"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t0=${SECONDS}
hack/dev.sh up >"${DEV_DIR}/up.log" 2>&1 || { cat "${DEV_DIR}/up.log" >&2; exit 1; }
echo "e2e: control plane with 2 replicas (access mode ${DEV_ACCESS_MODE}) up in $((SECONDS - t0))s" >&2
go test -tags e2e ./test/e2e -count=1 -timeout 10m -v -ginkgo.v "-ginkgo.label-filter=${label_filter}" ${E2E_FLAGS:-}
echo "e2e: passed in $((SECONDS - t0))s" >&2
