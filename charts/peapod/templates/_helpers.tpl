{{/*
Names and labels shared by every template.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "peapod.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: fullnameOverride, else "<release>" when it already contains the
chart name, else "<release>-<chart>"; at most 63 characters (DNS label).
*/}}
{{- define "peapod.fullname" -}}
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

{{/* "<chart>-<version>" for the helm.sh/chart label. */}}
{{- define "peapod.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the agent pods; they never change after install (DaemonSet selectors are immutable). */}}
{{- define "peapod.selectorLabels" -}}
app.kubernetes.io/name: {{ include "peapod.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end }}

{{/* The standard labels on every object. */}}
{{- define "peapod.labels" -}}
helm.sh/chart: {{ include "peapod.chart" . }}
{{ include "peapod.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: peapod
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The ServiceAccount the agents run as. */}}
{{- define "peapod.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "peapod.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The agent image: repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "peapod.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* --metrics-bind-address: "<host>:<port>", IPv6 hosts in brackets, ":<port>" for every address. */}}
{{- define "peapod.metricsBindAddress" -}}
{{- $host := .Values.metrics.host }}
{{- if and (contains ":" $host) (not (hasPrefix "[" $host)) }}
{{- $host = printf "[%s]" $host }}
{{- end }}
{{- printf "%s:%d" $host (int .Values.metrics.port) }}
{{- end }}

{{/* An HTTP probe handler on the agent's endpoint; the argument is (list $ "/path"). */}}
{{- define "peapod.httpGet" -}}
{{- $root := index . 0 -}}
httpGet:
  path: {{ index . 1 }}
  port: metrics
  scheme: HTTP
  {{- $host := trimAll "[]" $root.Values.metrics.host }}
  {{- if not (has $host (list "" "0.0.0.0" "::")) }}
  host: {{ $host | quote }}
  {{- end }}
{{- end }}

{{/* True (non-empty) when the ValidatingAdmissionPolicy is to be rendered. */}}
{{- define "peapod.admissionPolicyEnabled" -}}
{{- if and .Values.admissionPolicy.enabled (.Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy") }}true{{- end }}
{{- end }}
