#!/usr/bin/env bash
# A local control plane with kubepim: etcd, kube-apiserver,
# kube-controller-manager (when it can be built) and bin/manager, all on
# 127.0.0.1, no containers, no kubelet; with the test OpenID provider
# (hack/oidc-provider), which kube-apiserver trusts, and the web console
# (bin/console) unless DEV_CONSOLE=false. See docs/development.md.
#
# Usage: hack/dev.sh run|up|down|status|restart-manager|start|stop|kill
#   run              start everything, follow the manager's log; Ctrl-C stops all
#   up               start everything in the background (or what is missing); return when ready
#   down             stop everything (managers, controller-manager, apiserver, etcd)
#   status           say what runs
#   restart-manager  restart bin/manager only (after `make build`)
#   start NAME...    start one component that is down (etcd, oidc-provider, kube-apiserver, webhook-proxy, manager, manager-1, console, ...)
#   stop NAME...     stop components gracefully (SIGTERM)
#   kill NAME...     kill components at once (SIGKILL), for fault injection
#
# DEV_REPLICAS=2 runs two manager replicas (manager, manager-1) with leader
# election, behind hack/devproxy on the webhook port (docs/reliability.md).
#
# DEV_ACCESS_MODE=authorizer runs the managers with --access-mode=authorizer
# and kube-apiserver with --authorization-config: config/authorizer's file
# (Node, RBAC, then kubepim's webhook at the webhook port's /authorize),
# written to bin/dev/authorization-config.yaml (docs/authorizer.md). The
# mode is the API server's too: switching it needs `hack/dev.sh down` first.
#
# State lives under bin/dev/ (DEV_DIR): etcd's data (kept across restarts),
# certificates, kubeconfig (the admin's, for people), manager.kubeconfig (the
# manager's: a token of its ServiceAccount), logs and pid files.
# `hack/dev.sh down && rm -rf bin/dev` starts from scratch. Ports can be moved with the DEV_*_PORT
# variables below.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

DEV_DIR="${DEV_DIR:-${ROOT}/bin/dev}"
ETCD_PORT="${DEV_ETCD_PORT:-23790}"
ETCD_PEER_PORT="${DEV_ETCD_PEER_PORT:-23800}"
APISERVER_PORT="${DEV_APISERVER_PORT:-16443}"
KCM_PORT="${DEV_KCM_PORT:-10357}"
WEBHOOK_PORT="${DEV_WEBHOOK_PORT:-19443}"
METRICS_PORT="${DEV_METRICS_PORT:-18080}"
PROBE_PORT="${DEV_PROBE_PORT:-18081}"
NAMESPACE="${DEV_NAMESPACE:-kubepim-system}"
MANAGER_BIN="${MANAGER_BIN:-${ROOT}/bin/manager}"
TIMEOUT="${DEV_TIMEOUT:-120}"           # seconds to wait for each component
WITH_KCM="${DEV_CONTROLLER_MANAGER:-true}"
WITH_SAMPLES="${DEV_SAMPLES:-true}"
# The console: the OpenID provider on DEV_OIDC_PORT (kube-apiserver trusts
# it through config/console/authentication-config.yaml) and bin/console on
# DEV_CONSOLE_PORT, both HTTPS with the provider's CA (bin/dev/oidc/ca.crt).
WITH_CONSOLE="${DEV_CONSOLE:-true}"
OIDC_PORT="${DEV_OIDC_PORT:-15556}"
CONSOLE_PORT="${DEV_CONSOLE_PORT:-18443}"
CONSOLE_BIN="${CONSOLE_BIN:-${ROOT}/bin/console}"
OIDC_DIR="${DEV_DIR}/oidc"
ISSUER_URL="https://127.0.0.1:${OIDC_PORT}"
CONSOLE_URL="https://127.0.0.1:${CONSOLE_PORT}"
AUTHN_CONFIG="${DEV_DIR}/authentication-config.yaml"
CONSOLE_MFA_CLAIM="kubepim.io/amr"
# Several replicas: replica 0 is "manager", replica i is "manager-i". The
# webhook configurations name DEV_WEBHOOK_PORT; with more than one replica
# hack/devproxy listens there and replica i serves webhooks on
# DEV_WEBHOOK_PORT+1+i, metrics on DEV_METRICS_PORT+2i and probes on
# DEV_PROBE_PORT+2i. Leader election is on whenever there are several.
REPLICAS="${DEV_REPLICAS:-1}"
[[ "${REPLICAS}" =~ ^[1-9]$ ]] || { echo "dev: ERROR: DEV_REPLICAS must be 1 to 9" >&2; exit 1; }
LEADER_ELECT="${DEV_LEADER_ELECT:-$([[ "${REPLICAS}" -gt 1 ]] && echo true || echo false)}"
SERVICE_CIDR="10.0.0.0/24"
ACCESS_MODE="${DEV_ACCESS_MODE:-bindings}"
[[ "${ACCESS_MODE}" == bindings || "${ACCESS_MODE}" == authorizer ]] || { echo "dev: ERROR: DEV_ACCESS_MODE must be bindings or authorizer" >&2; exit 1; }
AUTHZ_CONFIG="${DEV_DIR}/authorization-config.yaml"
AUTHZ_KUBECONFIG="${DEV_DIR}/authorizer.kubeconfig"
AUTHORIZER_PATH=/authorize

PKI="${DEV_DIR}/pki"
WEBHOOK_CERTS="${DEV_DIR}/webhook-certs"
KUBECONFIG_FILE="${DEV_DIR}/kubeconfig"
# The manager runs as its own ServiceAccount, as in a cluster install
# (config/default: namespace kubepim-system, namePrefix kubepim-), with a
# token made at each start. The admin kubeconfig above is for people.
# config/default fixes the namespace of the ServiceAccount and of the
# manager's Role (its Secrets and ConfigMaps) to kubepim-system.
MANAGER_SA="kubepim-controller-manager"
MANAGER_SA_NAMESPACE="kubepim-system"
MANAGER_KUBECONFIG="${DEV_DIR}/manager.kubeconfig"
MANAGER_TOKEN_TTL="${DEV_MANAGER_TOKEN_TTL:-8760h}"
TOOLS="${DEV_DIR}/tools"
# replica_name I prints the component name of manager replica I.
replica_name() { if (($1 == 0)); then echo manager; else echo "manager-$1"; fi; }
MANAGERS=()
for ((i = 0; i < REPLICAS; i++)); do MANAGERS+=("$(replica_name "${i}")"); done
# Components in start order; `down` stops them in reverse.
COMPONENTS=(etcd)
[[ "${WITH_CONSOLE}" == true ]] && COMPONENTS+=(oidc-provider)
COMPONENTS+=(kube-apiserver kube-controller-manager)
((REPLICAS > 1)) && COMPONENTS+=(webhook-proxy)
COMPONENTS+=("${MANAGERS[@]}")
[[ "${WITH_CONSOLE}" == true ]] && COMPONENTS+=(console)

log() { echo "dev: $*" >&2; }
warn() { echo "dev: WARNING: $*" >&2; }
die() { echo "dev: ERROR: $*" >&2; exit 1; }
kc() { kubectl --kubeconfig "${KUBECONFIG_FILE}" "$@"; }

pidfile() { echo "${DEV_DIR}/$1.pid"; }
logfile() { echo "${DEV_DIR}/$1.log"; }

# pid_of NAME prints the pid of a running component, or fails. The command
# line must still name the component's program, so a recycled pid does not
# count.
pid_of() {
  local f pid program="$1"
  case "$1" in
    manager-*) program=manager ;;
    webhook-proxy) program=devproxy ;;
  esac
  f="$(pidfile "$1")"
  [[ -f "${f}" ]] || return 1
  pid="$(<"${f}")"
  [[ "${pid}" =~ ^[0-9]+$ ]] && kill -0 "${pid}" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -q -- "${program}" || return 1
  echo "${pid}"
}
running() { pid_of "$1" >/dev/null; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# http_ok URL [curl options]: true if URL answers 2xx. Plain http works
# without curl too.
http_ok() {
  local url="$1"; shift
  if command -v curl >/dev/null; then
    curl -fsS -o /dev/null --max-time 3 "$@" "${url}" 2>/dev/null
    return
  fi
  [[ "${url}" =~ ^http://([^:/]+):([0-9]+)(/.*)?$ ]] || return 0 # https without curl: trust the process check
  local host="${BASH_REMATCH[1]}" port="${BASH_REMATCH[2]}" path="${BASH_REMATCH[3]:-/}" status
  status="$(exec 3<>"/dev/tcp/${host}/${port}" && printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "${path}" "${host}" >&3 && timeout 3 head -n1 <&3)" 2>/dev/null || return 1
  [[ "${status}" =~ ^HTTP/[0-9.]+\ 2 ]]
}

show_log_tail() {
  local f; f="$(logfile "$1")"
  [[ -f "${f}" ]] || return 0
  echo "---- last lines of ${f} ----" >&2
  tail -n 25 "${f}" >&2
  echo "----" >&2
}

# start NAME COMMAND...: run COMMAND in its own session (so that Ctrl-C in a
# terminal reaches only this script, which stops everything in order), with
# its output appended to bin/dev/NAME.log and its pid in bin/dev/NAME.pid.
start() {
  local name="$1"; shift
  local f; f="$(logfile "${name}")"
  echo "==== $(date -u +%FT%TZ) starting: $*" >>"${f}"
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$(pidfile "${name}")" "$@" >>"${f}" 2>&1 </dev/null &
  local i
  for i in $(seq 50); do [[ -s "$(pidfile "${name}")" ]] && break; sleep 0.1; done
}

# wait_for NAME WHAT CHECK...: wait until CHECK passes while NAME runs.
wait_for() {
  local name="$1" what="$2"; shift 2
  local deadline=$((SECONDS + TIMEOUT))
  until "$@"; do
    if ! running "${name}"; then
      show_log_tail "${name}"
      die "${name} exited while starting; its log is $(logfile "${name}")"
    fi
    if ((SECONDS >= deadline)); then
      show_log_tail "${name}"
      die "${what} not ready after ${TIMEOUT}s (DEV_TIMEOUT); see $(logfile "${name}")"
    fi
    sleep 0.5
  done
}

need_port() {
  local name="$1" port="$2" var="$3"
  if port_in_use "${port}"; then
    die "port ${port} (for ${name}) is taken by another process; stop it or set ${var}"
  fi
}

stop() {
  local name="$1" pid i
  if ! pid="$(pid_of "${name}")"; then
    rm -f "$(pidfile "${name}")"
    return 0
  fi
  log "stopping ${name} (pid ${pid})"
  kill -TERM "${pid}" 2>/dev/null || true
  for i in $(seq 300); do
    kill -0 "${pid}" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "${pid}" 2>/dev/null; then
    warn "${name} did not stop within 30s; killing it"
    kill -KILL "${pid}" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$(pidfile "${name}")"
}

# kill_now NAME: SIGKILL, no chance to clean up (fault injection); returns
# once the process is gone.
kill_now() {
  local name="$1" pid i
  pid="$(pid_of "${name}")" || { rm -f "$(pidfile "${name}")"; return 0; }
  log "killing ${name} (pid ${pid}) with SIGKILL"
  kill -KILL "${pid}" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.05; done
  rm -f "$(pidfile "${name}")"
}

# ---------------------------------------------------------------------------

preflight() {
  command -v kubectl >/dev/null || die "kubectl is not on PATH"
  command -v setsid >/dev/null || die "setsid (util-linux) is not on PATH"
  command -v go >/dev/null || die "go is not on PATH"
  [[ -x "${MANAGER_BIN}" ]] || die "${MANAGER_BIN} does not exist: run 'make build' (or use 'make dev-up', which does)"
  if [[ "${WITH_CONSOLE}" == true ]]; then
    [[ -x "${CONSOLE_BIN}" ]] || die "${CONSOLE_BIN} does not exist: run 'make build' (or use 'make dev-up', which does); DEV_CONSOLE=false runs without the console"
  fi
  mkdir -p "${DEV_DIR}" "${TOOLS}"
}

find_assets() {
  if [[ "${WITH_KCM}" == true ]]; then
    if ASSETS="$(hack/install-control-plane.sh --with-controller-manager)"; then
      return
    fi
    warn "could not build kube-controller-manager (see above): running without it, so no garbage collection, ClusterRole aggregation or service-account tokens"
  fi
  ASSETS="$(hack/install-control-plane.sh)" || die "could not build kube-apiserver and etcd (hack/install-control-plane.sh)"
}

build_tools() {
  go build -o "${TOOLS}/devcerts" ./hack/devcerts || die "could not build hack/devcerts"
  go build -o "${TOOLS}/devwebhooks" ./hack/devwebhooks || die "could not build hack/devwebhooks"
  if ((REPLICAS > 1)); then
    go build -o "${TOOLS}/devproxy" ./hack/devproxy || die "could not build hack/devproxy"
  fi
  if [[ "${WITH_CONSOLE}" == true ]]; then
    go build -o "${TOOLS}/oidc-provider" ./hack/oidc-provider || die "could not build hack/oidc-provider"
  fi
}

# start_oidc starts the test OpenID provider (the sample users, with
# passwords and TOTP secrets kept in bin/dev/oidc/users.json) and has it
# write kube-apiserver's authentication configuration for itself.
start_oidc() {
  [[ "${WITH_CONSOLE}" == true ]] || return 0
  running oidc-provider && { log "oidc-provider already runs (pid $(pid_of oidc-provider))"; return; }
  need_port oidc-provider "${OIDC_PORT}" DEV_OIDC_PORT
  log "starting the OpenID provider on ${ISSUER_URL}"
  rm -f "${AUTHN_CONFIG}"
  start oidc-provider "${TOOLS}/oidc-provider" --dir "${OIDC_DIR}" --addr "127.0.0.1:${OIDC_PORT}" \
    --redirect-uri "${CONSOLE_URL}/auth/callback" --post-logout-redirect-uri "${CONSOLE_URL}/signed-out" \
    --authentication-config "${AUTHN_CONFIG}" --authentication-config-template config/console/authentication-config.yaml
  wait_for oidc-provider "the OpenID provider" test -s "${AUTHN_CONFIG}"
  wait_for oidc-provider "the OpenID provider" http_ok "${ISSUER_URL}/.well-known/openid-configuration" --cacert "${OIDC_DIR}/ca.crt"
}

console_ready() { http_ok "${CONSOLE_URL}/healthz" --cacert "${OIDC_DIR}/ca.crt"; }

# start_console runs bin/console on loopback, signed in through the
# provider, with the provider's serving certificate (127.0.0.1) and the
# admin kubeconfig's server and CA (never its credentials).
start_console() {
  [[ "${WITH_CONSOLE}" == true ]] || return 0
  running console && { log "console already runs (pid $(pid_of console))"; return; }
  need_port console "${CONSOLE_PORT}" DEV_CONSOLE_PORT
  mkdir -p "${DEV_DIR}/console"
  if [[ ! -s "${DEV_DIR}/console/session-keys" ]]; then
    (umask 077; head -c 48 /dev/urandom | base64 -w0 >"${DEV_DIR}/console/session-keys"; echo >>"${DEV_DIR}/console/session-keys")
  fi
  log "starting the console on ${CONSOLE_URL}"
  start console "${CONSOLE_BIN}" --console-url "${CONSOLE_URL}" --listen-address "127.0.0.1:${CONSOLE_PORT}" \
    --tls-cert-file "${OIDC_DIR}/tls.crt" --tls-key-file "${OIDC_DIR}/tls.key" \
    --issuer-url "${ISSUER_URL}" --issuer-ca-file "${OIDC_DIR}/ca.crt" --client-id kubepim-console \
    --client-secret-file "${OIDC_DIR}/client-secret" --session-key-file "${DEV_DIR}/console/session-keys" \
    --kubeconfig "${KUBECONFIG_FILE}" --kubepim-namespace "${NAMESPACE}" --mfa-claim "${CONSOLE_MFA_CLAIM}"
  wait_for console "the console" console_ready
  echo "${CONSOLE_URL}" >"${DEV_DIR}/console-url"
}

start_etcd() {
  running etcd && { log "etcd already runs (pid $(pid_of etcd))"; return; }
  need_port etcd "${ETCD_PORT}" DEV_ETCD_PORT
  need_port "etcd (peer)" "${ETCD_PEER_PORT}" DEV_ETCD_PEER_PORT
  log "starting etcd on 127.0.0.1:${ETCD_PORT}"
  start etcd "${ASSETS}/etcd" \
    --name=kubepim-dev \
    --data-dir="${DEV_DIR}/etcd" \
    --listen-client-urls="http://127.0.0.1:${ETCD_PORT}" \
    --advertise-client-urls="http://127.0.0.1:${ETCD_PORT}" \
    --listen-peer-urls="http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-advertise-peer-urls="http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-cluster="kubepim-dev=http://127.0.0.1:${ETCD_PEER_PORT}" \
    --listen-metrics-urls="" \
    --log-level=warn
  wait_for etcd "etcd" http_ok "http://127.0.0.1:${ETCD_PORT}/health"
}

# rbac_manifests prints the ServiceAccounts, Roles, ClusterRoles and their
# bindings of `kubectl kustomize config/default` (not its Deployment,
# Services or webhook configurations, which dev.sh replaces).
rbac_manifests() {
  local out
  out="$(kubectl kustomize config/default)" || return 1
  awk '
    function flush() { if (keep) printf "---\n%s", doc; doc = ""; keep = 0 }
    /^---$/ { flush(); next }
    { doc = doc $0 "\n" }
    /^kind: (ServiceAccount|Role|RoleBinding|ClusterRole|ClusterRoleBinding)$/ { keep = 1 }
    END { flush() }
  ' <<<"${out}"
}

apiserver_ready() { kc get --raw /readyz >/dev/null 2>&1; }

start_apiserver() {
  running kube-apiserver && { log "kube-apiserver already runs (pid $(pid_of kube-apiserver))"; return; }
  need_port kube-apiserver "${APISERVER_PORT}" DEV_APISERVER_PORT
  log "starting kube-apiserver on https://127.0.0.1:${APISERVER_PORT}"
  mkdir -p "${DEV_DIR}/kube-apiserver"
  # Trust the OpenID provider's ID tokens for the console's client
  # (config/console/authentication-config.yaml, filled in by the provider).
  local authn=()
  if [[ "${WITH_CONSOLE}" == true ]]; then
    [[ -s "${AUTHN_CONFIG}" ]] || die "${AUTHN_CONFIG} is missing: start the OpenID provider first (hack/dev.sh start oidc-provider)"
    authn=(--authentication-config="${AUTHN_CONFIG}")
  fi
  local authz=(--authorization-mode=Node,RBAC)
  if [[ "${ACCESS_MODE}" == authorizer ]]; then
    write_authorization_config
    authz=(--authorization-config="${AUTHZ_CONFIG}")
  fi
  start kube-apiserver "${ASSETS}/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:${ETCD_PORT}" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --secure-port="${APISERVER_PORT}" \
    --cert-dir="${DEV_DIR}/kube-apiserver" \
    --tls-cert-file="${PKI}/apiserver.crt" \
    --tls-private-key-file="${PKI}/apiserver.key" \
    --client-ca-file="${PKI}/ca.crt" \
    --requestheader-client-ca-file="${PKI}/ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User \
    --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="${PKI}/front-proxy-client.crt" \
    --proxy-client-key-file="${PKI}/front-proxy-client.key" \
    "${authz[@]}" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="${PKI}/sa.pub" \
    --service-account-signing-key-file="${PKI}/sa.key" \
    --service-account-max-token-expiration=8760h \
    --service-cluster-ip-range="${SERVICE_CIDR}" \
    --endpoint-reconciler-type=none \
    --allow-privileged=true \
    --profiling=false \
    "${authn[@]}"
  wait_for kube-apiserver "kube-apiserver" apiserver_ready
}

# write_authorization_config writes kube-apiserver's authorization
# configuration for DEV_ACCESS_MODE=authorizer: config/authorizer's file
# with its kubeconfig here, which sends SubjectAccessReviews to the webhook
# port (hack/devproxy's front with several replicas, as a Service in a
# cluster) and trusts the dev CA that signed the managers' certificate. The
# manager runs as the ServiceAccount the file already names.
write_authorization_config() {
  local src=config/authorizer/authorization-config.yaml
  grep -q '/etc/kubernetes/kubepim-authorizer.kubeconfig' "${src}" \
    && grep -q "system:serviceaccount:${MANAGER_SA_NAMESPACE}:${MANAGER_SA}'" "${src}" \
    || die "${src} no longer names /etc/kubernetes/kubepim-authorizer.kubeconfig and ${MANAGER_SA_NAMESPACE}:${MANAGER_SA}: update write_authorization_config"
  sed "s#/etc/kubernetes/kubepim-authorizer.kubeconfig#${AUTHZ_KUBECONFIG}#" "${src}" >"${AUTHZ_CONFIG}"
  cat >"${AUTHZ_KUBECONFIG}" <<EOF
# kube-apiserver -> kubepim's authorization webhook (written by hack/dev.sh).
apiVersion: v1
kind: Config
clusters:
- name: kubepim
  cluster:
    server: https://127.0.0.1:${WEBHOOK_PORT}${AUTHORIZER_PATH}
    certificate-authority: ${PKI}/ca.crt
users:
- name: kube-apiserver
  user: {}
contexts:
- name: kubepim
  context: {cluster: kubepim, user: kube-apiserver}
current-context: kubepim
EOF
}

start_kcm() {
  if [[ "${WITH_KCM}" != true ]]; then
    log "kube-controller-manager skipped (DEV_CONTROLLER_MANAGER=${WITH_KCM})"
    return
  fi
  if [[ ! -x "${ASSETS}/kube-controller-manager" ]]; then
    log "no kube-controller-manager in ${ASSETS}: skipped"
    return
  fi
  running kube-controller-manager && { log "kube-controller-manager already runs (pid $(pid_of kube-controller-manager))"; return; }
  need_port kube-controller-manager "${KCM_PORT}" DEV_KCM_PORT
  log "starting kube-controller-manager (secure port 127.0.0.1:${KCM_PORT})"
  mkdir -p "${DEV_DIR}/kube-controller-manager"
  # No nodes and no cloud: the node, route and cloud controllers have
  # nothing to do. Garbage collection, ClusterRole aggregation, namespace
  # deletion and service-account tokens are what kubepim needs.
  start kube-controller-manager "${ASSETS}/kube-controller-manager" \
    --kubeconfig="${KUBECONFIG_FILE}" \
    --authentication-kubeconfig="${KUBECONFIG_FILE}" \
    --authorization-kubeconfig="${KUBECONFIG_FILE}" \
    --bind-address=127.0.0.1 \
    --secure-port="${KCM_PORT}" \
    --cert-dir="${DEV_DIR}/kube-controller-manager" \
    --leader-elect=false \
    --controllers='*,-node-ipam-controller,-node-lifecycle-controller,-persistentvolume-attach-detach-controller,-taint-eviction-controller,-device-taint-eviction-controller' \
    --use-service-account-credentials=false \
    --service-account-private-key-file="${PKI}/sa.key" \
    --root-ca-file="${PKI}/ca.crt" \
    --cluster-signing-cert-file="${PKI}/ca.crt" \
    --cluster-signing-key-file="${PKI}/ca.key" \
    --cluster-name=kubepim-dev \
    --service-cluster-ip-range="${SERVICE_CIDR}" \
    --profiling=false
  wait_for kube-controller-manager "kube-controller-manager" http_ok "https://127.0.0.1:${KCM_PORT}/healthz" -k
}

install_kubepim() {
  log "applying CRDs (config/crd/bases)"
  kc apply --server-side --force-conflicts --field-manager=kubepim-dev -f config/crd/bases >/dev/null \
    || die "could not apply the CRDs; see the messages above"
  kc wait --for=condition=Established --timeout="${TIMEOUT}s" -f config/crd/bases >/dev/null \
    || die "the CRDs did not become Established"
  local ns
  for ns in "${NAMESPACE}" "${MANAGER_SA_NAMESPACE}"; do
    kc create namespace "${ns}" --dry-run=client -o yaml | kc apply -f - >/dev/null
  done
  # All RBAC of config/rbac as config/default installs it: the manager's
  # ServiceAccount, its ClusterRole and Role (role.yaml, generated from the
  # +kubebuilder:rbac markers), their bindings, leader election, the metrics
  # reader, and the ClusterRoles for people (kubepim-requester, -approver,
  # -admin, -auditor; config/samples binds them).
  log "applying RBAC (config/rbac as config/default renders it)"
  rbac_manifests | kc apply --server-side --force-conflicts --field-manager=kubepim-dev -f - >/dev/null \
    || die "could not apply the RBAC of config/rbac"
  log "applying webhook configurations -> https://127.0.0.1:${WEBHOOK_PORT}"
  "${TOOLS}/devwebhooks" -in config/webhook/manifests.yaml -ca "${PKI}/ca.crt" -host 127.0.0.1 -port "${WEBHOOK_PORT}" \
    | kc apply --server-side --force-conflicts --field-manager=kubepim-dev -f - >/dev/null \
    || die "could not apply the webhook configurations"
}

# replica_index NAME prints I of manager-I (0 for manager).
replica_index() { if [[ "$1" == manager ]]; then echo 0; else echo "${1#manager-}"; fi; }
replica_webhook_port() { if ((REPLICAS > 1)); then echo $((WEBHOOK_PORT + 1 + $1)); else echo "${WEBHOOK_PORT}"; fi; }
replica_metrics_port() { echo $((METRICS_PORT + 2 * $1)); }
replica_probe_port() { echo $((PROBE_PORT + 2 * $1)); }
manager_ready() { http_ok "http://127.0.0.1:$(replica_probe_port "$(replica_index "${1:-manager}")")/readyz"; }

start_webhook_proxy() {
  ((REPLICAS > 1)) || return 0
  running webhook-proxy && return 0
  need_port "webhook proxy" "${WEBHOOK_PORT}" DEV_WEBHOOK_PORT
  local args=(-listen "127.0.0.1:${WEBHOOK_PORT}") i
  for ((i = 0; i < REPLICAS; i++)); do args+=(-backend "127.0.0.1:$(replica_webhook_port "${i}")"); done
  log "starting the webhook proxy on 127.0.0.1:${WEBHOOK_PORT} for ${REPLICAS} replicas"
  start webhook-proxy "${TOOLS}/devproxy" "${args[@]}"
  wait_for webhook-proxy "the webhook proxy" port_in_use "${WEBHOOK_PORT}"
}

start_managers() {
  local m
  for m in "${MANAGERS[@]}"; do start_manager "${m}"; done
}

# write_manager_kubeconfig writes bin/dev/manager.kubeconfig: the admin
# kubeconfig's server and CA, and a fresh token of the manager's
# ServiceAccount (made at each start, so an expired one never blocks it).
write_manager_kubeconfig() {
  local server ca token
  server="$(kc config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')" \
    && ca="$(kc config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')" \
    && [[ -n "${server}" && -n "${ca}" ]] \
    || die "could not read the server and CA of ${KUBECONFIG_FILE}"
  token="$(kc create token "${MANAGER_SA}" -n "${MANAGER_SA_NAMESPACE}" --duration="${MANAGER_TOKEN_TTL}")" \
    || die "could not get a token for ServiceAccount ${MANAGER_SA_NAMESPACE}/${MANAGER_SA}"
  (
    umask 077
    cat >"${MANAGER_KUBECONFIG}.tmp" <<EOF
# The manager's identity: ServiceAccount ${MANAGER_SA_NAMESPACE}/${MANAGER_SA}.
# Written by hack/dev.sh at each start of the manager; the token is valid for ${MANAGER_TOKEN_TTL}.
apiVersion: v1
kind: Config
clusters:
- name: kubepim-dev
  cluster:
    server: ${server}
    certificate-authority-data: ${ca}
users:
- name: ${MANAGER_SA}
  user:
    token: ${token}
contexts:
- name: ${MANAGER_SA}
  context:
    cluster: kubepim-dev
    namespace: ${MANAGER_SA_NAMESPACE}
    user: ${MANAGER_SA}
current-context: ${MANAGER_SA}
EOF
  )
  mv -f "${MANAGER_KUBECONFIG}.tmp" "${MANAGER_KUBECONFIG}"
}

start_manager() {
  local name="${1:-manager}" idx wport mport pport
  running "${name}" && { log "${name} already runs (pid $(pid_of "${name}")); 'hack/dev.sh restart-manager' picks up a new build"; return; }
  idx="$(replica_index "${name}")"
  wport="$(replica_webhook_port "${idx}")" mport="$(replica_metrics_port "${idx}")" pport="$(replica_probe_port "${idx}")"
  need_port "${name} (webhooks)" "${wport}" DEV_WEBHOOK_PORT
  need_port "${name} (metrics)" "${mport}" DEV_METRICS_PORT
  need_port "${name} (probes)" "${pport}" DEV_PROBE_PORT
  # A new token at each `up` and restart-manager; `start` (fault recovery)
  # and the further replicas reuse it.
  [[ -s "${MANAGER_KUBECONFIG}" && ("${name}" != manager || "${REUSE_TOKEN:-false}" == true) ]] || write_manager_kubeconfig
  local args=(
    --kubeconfig="${MANAGER_KUBECONFIG}"
    --webhook-host=127.0.0.1
    --webhook-port="${wport}"
    --webhook-cert-dir="${WEBHOOK_CERTS}"
    --metrics-bind-address="127.0.0.1:${mport}"
    --health-probe-bind-address="127.0.0.1:${pport}"
  )
  [[ "${LEADER_ELECT}" == true ]] && args+=(--leader-elect)
  [[ "${ACCESS_MODE}" == authorizer ]] && args+=(--access-mode=authorizer)
  local help
  help="$("${MANAGER_BIN}" -h 2>&1 || true)"
  if grep -Eq '^[[:space:]]+--?namespace([[:space:]]|$)' <<<"${help}"; then
    args+=(--namespace="${NAMESPACE}")
  fi
  # Plain HTTP metrics on loopback for people and test/bench; a cluster
  # install serves them over HTTPS behind authentication (--metrics-secure).
  if grep -Eq '^[[:space:]]+--?metrics-secure([[:space:]]|$)' <<<"${help}"; then
    args+=(--metrics-secure=false)
  fi
  # With the console, users sign in through the provider, whose amr claim
  # the API server maps to ${CONSOLE_MFA_CLAIM}; notifications link to the
  # console.
  if [[ "${WITH_CONSOLE}" == true ]] && grep -Eq '^[[:space:]]+--?console-url([[:space:]]|$)' <<<"${help}"; then
    args+=(--mfa-claim="${CONSOLE_MFA_CLAIM}" --console-url="${CONSOLE_URL}")
  fi
  log "starting ${name} as system:serviceaccount:${MANAGER_SA_NAMESPACE}:${MANAGER_SA} (webhooks https://127.0.0.1:${wport}, metrics :${mport}, probes :${pport}, leader election ${LEADER_ELECT}, access mode ${ACCESS_MODE})"
  # POD_NAME plays the pod's name: the replica's identity in the leader
  # election Lease, stable across restarts of that replica (docs/reliability.md).
  start "${name}" env POD_NAMESPACE="${NAMESPACE}" POD_NAME="kubepim-${name}" "${MANAGER_BIN}" "${args[@]}" ${DEV_MANAGER_ARGS:-}
  wait_for "${name}" "${name}'s /readyz" manager_ready "${name}"
}

apply_samples() {
  [[ "${WITH_SAMPLES}" == true && -f config/samples/kustomization.yaml ]] || return 0
  log "applying config/samples"
  if ! kc apply -k config/samples >/dev/null; then
    warn "applying config/samples failed (messages above). If a webhook refused it, check that the manager serves that path: $(logfile manager)"
  fi
}

usage_info() {
  cat <<EOF

kubepim dev control plane is ready.
  export KUBECONFIG=${KUBECONFIG_FILE}
  kubectl get pim                                  # all kubepim objects
  kubectl --context alice get pim                  # as alice (group developers); also: alice-mfa, bob, carol
  kubectl --as alice --as-group developers auth can-i create activationrequests.kubepim.io
  kubectl --as alice create -f config/samples/activation/activationrequest.yaml

  API server   https://127.0.0.1:${APISERVER_PORT}   etcd http://127.0.0.1:${ETCD_PORT}
  webhooks     https://127.0.0.1:${WEBHOOK_PORT}   metrics http://127.0.0.1:${METRICS_PORT}/metrics   probes http://127.0.0.1:${PROBE_PORT}/readyz
  manager      runs as system:serviceaccount:${MANAGER_SA_NAMESPACE}:${MANAGER_SA} (${MANAGER_KUBECONFIG})
  access mode  ${ACCESS_MODE}$([[ "${ACCESS_MODE}" == authorizer ]] && echo " (kube-apiserver --authorization-config=${AUTHZ_CONFIG}; activations get no binding)")
  logs         ${DEV_DIR}/{etcd,kube-apiserver,kube-controller-manager,manager}.log
  stop         make dev-down   (state in ${DEV_DIR} is kept; rm -rf it to start over)
EOF
  [[ "${WITH_CONSOLE}" == true ]] || return 0
  cat <<EOF

  console      ${CONSOLE_URL}   (also in ${DEV_DIR}/console-url)
               its certificate and the provider's are signed by ${OIDC_DIR}/ca.crt: trust it, or accept the warning
  OpenID       ${ISSUER_URL}   (kube-apiserver trusts it: ${AUTHN_CONFIG})
  sign in as (alice and carol also give a TOTP code: add the otpauth URI to an authenticator app):
EOF
  "${TOOLS}/oidc-provider" --dir "${OIDC_DIR}" --users
}

cmd_up() {
  preflight
  local all=true c
  for c in "${COMPONENTS[@]}"; do
    [[ "${c}" == kube-controller-manager && "${WITH_KCM}" != true ]] && continue
    running "${c}" || all=false
  done
  if ${all}; then
    log "already running (hack/dev.sh status; hack/dev.sh down to stop)"
    usage_info
    return 0
  fi
  local t0=${SECONDS}
  find_assets
  build_tools
  "${TOOLS}/devcerts" -dir "${PKI}" -webhook-dir "${WEBHOOK_CERTS}" -kubeconfig "${KUBECONFIG_FILE}" \
    -server "https://127.0.0.1:${APISERVER_PORT}" -service-ip 10.0.0.1 || die "could not write certificates"
  start_etcd
  start_oidc
  start_apiserver
  start_kcm
  install_kubepim
  start_webhook_proxy
  start_managers
  start_console
  apply_samples
  log "ready in $((SECONDS - t0))s"
  usage_info
}

cmd_down() {
  local i f
  # Replicas and the proxy of an earlier run with more DEV_REPLICAS, too.
  for f in "${DEV_DIR}"/manager-*.pid "${DEV_DIR}"/webhook-proxy.pid "${DEV_DIR}"/console.pid "${DEV_DIR}"/oidc-provider.pid; do
    [[ -f "${f}" ]] || continue
    f="$(basename "${f}" .pid)"
    [[ " ${COMPONENTS[*]} " == *" ${f} "* ]] || stop "${f}"
  done
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    stop "${COMPONENTS[i]}"
  done
}

# cmd_start NAME...: start components that are down, in the order given
# (fault injection and recovery: hack/dev.sh kill manager; ...; hack/dev.sh start manager).
cmd_start() {
  preflight
  local name
  for name in "$@"; do
    case "${name}" in
      etcd) find_assets; start_etcd ;;
      oidc-provider) build_tools; start_oidc ;;
      console) start_console ;;
      kube-apiserver) find_assets; start_apiserver ;;
      kube-controller-manager) find_assets; start_kcm ;;
      webhook-proxy) start_webhook_proxy ;;
      manager | manager-[0-9]) REUSE_TOKEN=true start_manager "${name}" ;;
      *) die "unknown component ${name}" ;;
    esac
  done
}

cmd_run() {
  local c
  for c in "${COMPONENTS[@]}"; do
    if running "${c}"; then
      die "${c} already runs in the background (pid $(pid_of "${c}")): stop it with 'make dev-down' first"
    fi
  done
  TAIL_PID=""
  # Ctrl-C, TERM, HUP (terminal closed), a failed start or a component that died: stop everything.
  # SIGPIPE is ignored and errors do not end it, so that `make dev | tee`
  # cannot cut the shutdown short when tee has already gone.
  cleanup() {
    trap - INT TERM HUP EXIT
    trap '' PIPE
    set +e
    [[ -n "${TAIL_PID}" ]] && kill "${TAIL_PID}" 2>/dev/null
    echo >&2
    log "shutting down"
    cmd_down
  }
  trap 'cleanup; exit 130' INT
  trap 'cleanup; exit 143' TERM
  trap 'cleanup; exit 129' HUP
  trap 'cleanup' EXIT
  cmd_up
  echo
  log "following $(logfile manager); press Ctrl-C to stop everything"
  tail -n 0 -F "$(logfile manager)" &
  TAIL_PID=$!
  local leader
  leader="$(ps -o sid= -p $$ 2>/dev/null | tr -d ' ')" || leader=""
  while true; do
    # The terminal went away (its session leader, the shell, is gone) or
    # whoever started us did: do not leave the control plane behind.
    if [[ -n "${leader}" && "${leader}" != "$$" ]] && ! kill -0 "${leader}" 2>/dev/null; then
      log "the terminal's shell (pid ${leader}) exited"
      exit 129
    fi
    if ! kill -0 "${PPID}" 2>/dev/null; then
      log "parent process ${PPID} exited"
      exit 129
    fi
    for c in "${COMPONENTS[@]}"; do
      [[ -f "$(pidfile "${c}")" ]] || continue
      if ! running "${c}"; then
        show_log_tail "${c}"
        die "${c} exited; its log is $(logfile "${c}")"
      fi
    done
    sleep 2
  done
}

cmd_status() {
  local c pid rc=0
  for c in "${COMPONENTS[@]}"; do
    if pid="$(pid_of "${c}")"; then
      printf '%-24s running (pid %s)\n' "${c}" "${pid}"
    else
      printf '%-24s stopped\n' "${c}"
      [[ "${c}" == kube-controller-manager ]] || rc=1
    fi
  done
  if running kube-apiserver; then
    printf '%-24s %s\n' "apiserver /readyz" "$(kc get --raw /readyz 2>&1 | head -n1)"
  fi
  local m
  for m in "${MANAGERS[@]}"; do
    running "${m}" || continue
    if manager_ready "${m}"; then printf '%-24s ok\n' "${m} /readyz"; else printf '%-24s failing\n' "${m} /readyz"; rc=1; fi
  done
  echo "kubeconfig: ${KUBECONFIG_FILE}"
  return "${rc}"
}

cmd_restart_manager() {
  preflight
  running kube-apiserver || die "the control plane is not running: 'make dev-up' first"
  local m
  for m in "${MANAGERS[@]}"; do stop "${m}"; done
  build_tools
  install_kubepim
  start_webhook_proxy
  start_managers
  log "manager restarted (pid $(pid_of manager))"
}

case "${1:-}" in
  run) cmd_run ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  restart-manager) cmd_restart_manager ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; for c in "$@"; do stop "${c}"; done ;;
  kill) shift; for c in "$@"; do kill_now "${c}"; done ;;
  *) sed -n '8,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
