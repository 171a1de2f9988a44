{{- define "tracegate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tracegate.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "tracegate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tracegate.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The whole tracegate.yaml: the listeners from ports, then config. */}}
{{- define "tracegate.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $_ := set $cfg "listen" (printf "0.0.0.0:%v" .Values.ports.mcp) -}}
{{- $_ := set $cfg "admin_listen" (printf "0.0.0.0:%v" .Values.ports.admin) -}}
{{- if .Values.adminToken.existingSecret -}}
{{- $_ := set $cfg "admin" (dict "bearer_tokens" (list "${TRACEGATE_ADMIN_TOKEN}")) -}}
{{- end -}}
{{- if .Values.cluster.enabled -}}
{{- $cl := dict "redis_url" (required "cluster.redisURL is required with cluster.enabled" .Values.cluster.redisURL) "advertise_url" (printf "http://${POD_IP}:%v" .Values.ports.mcp) -}}
{{- if .Values.cluster.secret.existingSecret -}}
{{- $_ := set $cl "secret" "${TRACEGATE_CLUSTER_SECRET}" -}}
{{- end -}}
{{- $_ := set $cfg "cluster" $cl -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
