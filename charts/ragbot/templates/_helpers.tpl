{{/* Chart name, truncated to the 63 characters Kubernetes names allow. */}}
{{- define "ragbot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: the release name when it already contains the chart name. */}}
{{- define "ragbot.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ragbot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ragbot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ragbot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ragbot.labels" -}}
helm.sh/chart: {{ include "ragbot.chart" . }}
{{ include "ragbot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Annotations every object carries (values.commonAnnotations). */}}
{{- define "ragbot.annotations" -}}
{{- with .Values.commonAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "ragbot.serviceAccountName" -}}
{{- default (include "ragbot.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "ragbot.secretName" -}}
{{- default (include "ragbot.fullname" .) .Values.slack.existingSecret }}
{{- end }}

{{- define "ragbot.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
The config file the bot reads: values.config with ragbot.namespace forced to the
release namespace (where the bot's ConfigMaps and Lease live) and the ops port.
*/}}
{{- define "ragbot.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $ragbot := default dict $cfg.ragbot }}
{{- $_ := set $ragbot "namespace" .Release.Namespace }}
{{- $_ := set $ragbot "ops_port" (int .Values.opsPort) }}
{{- $_ := set $cfg "ragbot" $ragbot }}
{{- toYaml $cfg }}
{{- end }}
