{{/* Chart name, at most 63 characters. */}}
{{- define "kubepim.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name: the release name when it contains the chart name
("kubepim" for `helm install kubepim`), else <release>-<chart>. Kept short
enough for the suffixes the templates add.
*/}}
{{- define "kubepim.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kubepim.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubepim.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubepim.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
control-plane: controller-manager
{{- end }}

{{- define "kubepim.labels" -}}
helm.sh/chart: {{ include "kubepim.chart" . }}
app.kubernetes.io/name: {{ include "kubepim.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubepim
{{- end }}

{{- define "kubepim.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-controller-manager" (include "kubepim.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kubepim.webhookServiceName" -}}
{{- printf "%s-webhook-service" (include "kubepim.fullname" .) }}
{{- end }}

{{- define "kubepim.webhookCertSecretName" -}}
{{- printf "%s-webhook-server-cert" (include "kubepim.fullname" .) }}
{{- end }}

{{- define "kubepim.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "kubepim.mutatingWebhookConfigurationName" -}}
{{- printf "%s-mutating-webhook-configuration" (include "kubepim.fullname" .) }}
{{- end }}

{{- define "kubepim.validatingWebhookConfigurationName" -}}
{{- printf "%s-validating-webhook-configuration" (include "kubepim.fullname" .) }}
{{- end }}

{{- define "kubepim.consoleName" -}}
{{- printf "%s-console" (include "kubepim.fullname" .) }}
{{- end }}

{{- define "kubepim.consoleSelectorLabels" -}}
app.kubernetes.io/name: {{ include "kubepim.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: console
{{- end }}
