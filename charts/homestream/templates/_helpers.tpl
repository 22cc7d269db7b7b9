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

{{/*
The runtime pods' default Kafka Secret keys (kafka.runtimeSecrets) and the operator
flag each one is passed to, as `secret/key`.
*/}}
{{- define "homestream.kafkaRuntimeSecretEnv" -}}
tlsCa: HOMESTREAM_KAFKA_TLS_CA
tlsCertificate: HOMESTREAM_KAFKA_TLS_CERTIFICATE
tlsKey: HOMESTREAM_KAFKA_TLS_KEY
saslUsername: HOMESTREAM_KAFKA_SASL_USERNAME
saslPassword: HOMESTREAM_KAFKA_SASL_PASSWORD
{{- end -}}

{{/*
The operator's own Kafka credentials (kafka.operatorSecrets): the file each Secret key
is mounted as under /etc/homestream/kafka, and the operator flag naming that file.
*/}}
{{- define "homestream.kafkaOperatorFiles" -}}
tlsCa: { file: ca.crt, env: HOMESTREAM_KAFKA_ADMIN_CA_FILE }
tlsCertificate: { file: tls.crt, env: HOMESTREAM_KAFKA_ADMIN_CERTIFICATE_FILE }
tlsKey: { file: tls.key, env: HOMESTREAM_KAFKA_ADMIN_KEY_FILE }
saslUsername: { file: username, env: HOMESTREAM_KAFKA_ADMIN_SASL_USERNAME_FILE }
saslPassword: { file: password, env: HOMESTREAM_KAFKA_ADMIN_SASL_PASSWORD_FILE }
{{- end -}}

{{/* Whether any of kafka.operatorSecrets names a Secret: then they are mounted. */}}
{{- define "homestream.kafkaOperatorSecrets" -}}
{{- range $field, $ref := .Values.kafka.operatorSecrets }}{{ if $ref.name }}true{{ end }}{{ end -}}
{{- end -}}

{{/*
The runtime pods' default S3 Secret keys (s3.runtimeSecrets) and the operator flag each
one is passed to, as `secret/key`.
*/}}
{{- define "homestream.s3RuntimeSecretEnv" -}}
accessKeyId: HOMESTREAM_S3_ACCESS_KEY_ID_REF
secretAccessKey: HOMESTREAM_S3_SECRET_ACCESS_KEY_REF
{{- end -}}

{{/*
The operator's own S3 key (s3.operatorSecrets): the file each Secret key is mounted as
under /etc/homestream/s3, and the operator flag naming that file.
*/}}
{{- define "homestream.s3OperatorFiles" -}}
accessKeyId: { file: access-key-id, env: HOMESTREAM_S3_ADMIN_ACCESS_KEY_ID_FILE }
secretAccessKey: { file: secret-access-key, env: HOMESTREAM_S3_ADMIN_SECRET_ACCESS_KEY_FILE }
{{- end -}}

{{/* Refuses S3 values the operator would refuse at start: half an access key. */}}
{{- define "homestream.s3Checks" -}}
{{- range $secrets := list "runtimeSecrets" "operatorSecrets" -}}
{{- $refs := index $.Values.s3 $secrets -}}
{{- if ne (empty $refs.accessKeyId.name) (empty $refs.secretAccessKey.name) -}}
{{- fail (printf "s3.%s.accessKeyId and s3.%s.secretAccessKey go together (an access key needs both)" $secrets $secrets) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Refuses Kafka security values the operator would refuse at start. */}}
{{- define "homestream.kafkaSecurityChecks" -}}
{{- $kafka := .Values.kafka -}}
{{- range $secrets := list "runtimeSecrets" "operatorSecrets" -}}
{{- $refs := index $kafka $secrets -}}
{{- if ne (empty $refs.tlsCertificate.name) (empty $refs.tlsKey.name) -}}
{{- fail (printf "kafka.%s.tlsCertificate and kafka.%s.tlsKey go together (mutual TLS needs both)" $secrets $secrets) -}}
{{- end -}}
{{- if and $kafka.sasl.mechanism (or (empty $refs.saslUsername.name) (empty $refs.saslPassword.name)) -}}
{{- fail (printf "kafka.sasl.mechanism needs kafka.%s.saslUsername.name and kafka.%s.saslPassword.name" $secrets $secrets) -}}
{{- end -}}
{{- end -}}
{{- end -}}
