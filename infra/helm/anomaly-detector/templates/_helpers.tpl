{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "anomaly-detector.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, suffixed with the chart name unless it already contains it. */}}
{{- define "anomaly-detector.fullname" -}}
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

{{- define "anomaly-detector.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "anomaly-detector.selectorLabels" -}}
app.kubernetes.io/name: {{ include "anomaly-detector.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "anomaly-detector.labels" -}}
helm.sh/chart: {{ include "anomaly-detector.chart" . }}
{{ include "anomaly-detector.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: anomaly-detector
{{- end }}

{{- define "anomaly-detector.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "anomaly-detector.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "anomaly-detector.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The chart's Secret: non-empty secret.values only. */}}
{{- define "anomaly-detector.secretData" -}}
{{- range $k, $v := .Values.secret.values }}
{{- if $v }}
{{ $k }}: {{ $v | toString | b64enc | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* The ConfigMap's data: non-empty config values, as strings. */}}
{{- define "anomaly-detector.configData" -}}
{{- range $k, $v := .Values.config }}
{{- if ne (toString $v) "" }}
{{ $k }}: {{ $v | toString | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Refuses to render without a DATABASE_URL source: replicas must share one external PostgreSQL.
*/}}
{{- define "anomaly-detector.requireDatabase" -}}
{{- $inSecret := and .Values.secret.create .Values.secret.values.DATABASE_URL }}
{{- $inRef := hasKey .Values.secretKeyRefs "DATABASE_URL" }}
{{- if not (or $inSecret $inRef .Values.existingSecret) }}
{{- fail "DATABASE_URL is required: set secret.values.DATABASE_URL, secretKeyRefs.DATABASE_URL, or existingSecret (holding DATABASE_URL)" }}
{{- end }}
{{- end }}

{{/*
Where the METRICS_TOKEN is, as a secret key selector ({name, key}), or empty when unknown.
*/}}
{{- define "anomaly-detector.metricsTokenSecret" -}}
{{- if .Values.metrics.serviceMonitor.tokenSecret.name }}
{{- toYaml .Values.metrics.serviceMonitor.tokenSecret }}
{{- else if hasKey .Values.secretKeyRefs "METRICS_TOKEN" }}
{{- toYaml (get .Values.secretKeyRefs "METRICS_TOKEN") }}
{{- else if and .Values.secret.create .Values.secret.values.METRICS_TOKEN }}
name: {{ include "anomaly-detector.fullname" . }}
key: METRICS_TOKEN
{{- end }}
{{- end }}

{{/* Environment shared by the service and the migration Job. */}}
{{- define "anomaly-detector.envFrom" -}}
- configMapRef:
    name: {{ .configMap }}
{{- if and .root.Values.secret.create (include "anomaly-detector.secretData" .root | trim) }}
- secretRef:
    name: {{ .secret }}
{{- end }}
{{- if .root.Values.existingSecret }}
- secretRef:
    name: {{ .root.Values.existingSecret }}
{{- end }}
{{- end }}

{{- define "anomaly-detector.env" -}}
- name: PORT
  value: {{ .Values.service.targetPort | quote }}
# The service's own shutdown deadline, 5 s inside the pod's: SIGKILL never cuts a clean stop.
- name: SHUTDOWN_GRACE_SECONDS
  value: {{ max 1 (sub (int .Values.terminationGracePeriodSeconds) 5) | quote }}
{{- range $name, $ref := .Values.secretKeyRefs }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.name }}
      key: {{ $ref.key }}
{{- end }}
{{- end }}
