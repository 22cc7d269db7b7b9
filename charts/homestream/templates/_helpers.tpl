{{/* The name of every object of the release. */}}
{{- define "homestream.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "homestream.selectorLabels" -}}
app.kubernetes.io/name: homestream-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "homestream.labels" -}}
{{ include "homestream.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "homestream.serviceAccountName" -}}
{{- default (include "homestream.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}
