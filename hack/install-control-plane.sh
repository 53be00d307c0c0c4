#!/usr/bin/env bash
# Builds the Kubernetes control-plane binaries that envtest and `make dev` need
# (kube-apiserver, etcd and, on request, kube-controller-manager) from the Go
# module proxy, and caches them under bin/k8s/<version>/.
#
# Why build: the usual envtest assets are downloaded from a bucket that this
# project's machines (and many air-gapped CI runners) cannot reach, whereas the
# Go module proxy is reachable. The binaries are built once and reused.
#
# Usage: hack/install-control-plane.sh [--with-controller-manager]
# Prints the assets directory (usable as KUBEBUILDER_ASSETS) on stdout.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.7.3}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ASSETS="${ROOT}/bin/k8s/${K8S_VERSION}"
WITH_KCM=false
[[ "${1:-}" == "--with-controller-manager" ]] && WITH_KCM=true

log() { echo "install-control-plane: $*" >&2; }

# A user who already has envtest assets can point KUBEBUILDER_ASSETS at them.
if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "${KUBEBUILDER_ASSETS}/kube-apiserver" && -x "${KUBEBUILDER_ASSETS}/etcd" ]] \
   && { ! $WITH_KCM || [[ -x "${KUBEBUILDER_ASSETS}/kube-controller-manager" ]]; }; then
  echo "${KUBEBUILDER_ASSETS}"
  exit 0
fi

mkdir -p "${ASSETS}"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
WORK="$(mktemp -d)"
trap 'rm -rf "${WORK}"' EXIT

# kubernetes_wrapper makes a throwaway module that requires k8s.io/kubernetes.
# Its go.mod requires the staging modules (k8s.io/api, apiserver, ...) at
# v0.0.0 and replaces them with ./staging paths, which a dependent module cannot
# use; so we replace each of them with its published v0.<minor>.<patch> tag.
kubernetes_wrapper() {
  local dir="${WORK}/kubernetes"
  [[ -f "${dir}/go.mod" ]] && { echo "${dir}"; return; }
  mkdir -p "${dir}"
  local gomod staging_version="v0.${K8S_VERSION#1.}"
  gomod="$(cd "${dir}" && go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  {
    echo "module kubepim.local/control-plane-build"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes v${K8S_VERSION}"
    echo
    grep -E '^[[:space:]]*k8s\.io/[^[:space:]]+ v0\.0\.0$' "${gomod}" | awk -v v="${staging_version}" '{print "replace " $1 " => " $1 " " v}'
  } > "${dir}/go.mod"
  echo "${dir}"
}

build_kubernetes_command() {
  local name="$1" dir pkg="k8s.io/kubernetes/cmd/$1"
  dir="$(kubernetes_wrapper)"
  local minor="${K8S_VERSION#1.}"; minor="${minor%%.*}"
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor} -X k8s.io/component-base/version.gitTreeState=clean"
  log "building ${name} v${K8S_VERSION} from the module proxy (several minutes on 2 cores, once)"
  (cd "${dir}" && go get "${pkg}@v${K8S_VERSION}" >&2 && go build -trimpath -ldflags "${ldflags}" -o "${ASSETS}/${name}.tmp" "${pkg}")
  mv "${ASSETS}/${name}.tmp" "${ASSETS}/${name}"
}

build_etcd() {
  local dir="${WORK}/etcd"
  mkdir -p "${dir}"
  log "building etcd v${ETCD_VERSION} from the module proxy"
  cat > "${dir}/main.go" <<'GO'
// Command etcd is etcd's server entry point, built from the module proxy.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "${dir}" && printf 'module kubepim.local/etcd-build\n\ngo 1.26\n' > go.mod \
    && go get "go.etcd.io/etcd/server/v3@v${ETCD_VERSION}" >&2 && go mod tidy >&2 \
    && go build -trimpath -ldflags "-s -w" -o "${ASSETS}/etcd.tmp" .)
  mv "${ASSETS}/etcd.tmp" "${ASSETS}/etcd"
}

[[ -x "${ASSETS}/etcd" ]] || build_etcd
[[ -x "${ASSETS}/kube-apiserver" ]] || build_kubernetes_command kube-apiserver
if $WITH_KCM && [[ ! -x "${ASSETS}/kube-controller-manager" ]]; then
  build_kubernetes_command kube-controller-manager
fi
echo "${ASSETS}"
