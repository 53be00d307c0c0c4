#!/usr/bin/env bash
# Writes config/argocd/argocd-cm.yaml from config/argocd/health.lua: one
# health customization per kubepim kind (test/argocd checks they match).
set -euo pipefail
cd "$(dirname "$0")/.."
lua=config/argocd/health.lua
{
	cat <<'HEAD'
# Argo CD: merge into the argocd-cm ConfigMap (or the Helm chart's
# configs.cm values) so that Argo CD judges the health of kubepim objects
# the way kubepim means it. Generated from health.lua; test/argocd keeps
# the two in step.
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/part-of: argocd
data:
HEAD
	for kind in AccessReview ActivationRequest AuditEvent Notification NotificationChannel RoleAssignment RoleSetting; do
		echo "  resource.customizations.health.kubepim.io_${kind}: |"
		sed -e 's/^\(.\)/    \1/' "$lua"
	done
} >config/argocd/argocd-cm.yaml
