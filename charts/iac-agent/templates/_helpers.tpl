{{/*
Names, labels and derived numbers shared by the templates.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "iac-agent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The resource name prefix: fullnameOverride, else <release>-<name> (the release name alone when it already
contains the chart name). The agent Deployment is named exactly this; the coordinator's resources add
"-coordinator", the token Secret "-token". Kept at 50 characters so that the suffixes fit in 63. */}}
{{- define "iac-agent.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The agent Deployment: the coordinator's pool file names it. */}}
{{- define "iac-agent.agentName" -}}
{{- include "iac-agent.fullname" . -}}
{{- end -}}

{{/* The coordinator's Deployment, Service, ConfigMap, Role, PodDisruptionBudget and Lease. */}}
{{- define "iac-agent.coordinatorName" -}}
{{- printf "%s-coordinator" (include "iac-agent.fullname" .) -}}
{{- end -}}

{{/* The Secret holding the pool token: the existing one, or the one the chart creates. */}}
{{- define "iac-agent.tokenSecretName" -}}
{{- if .Values.token.existingSecret -}}
{{- .Values.token.existingSecret -}}
{{- else -}}
{{- printf "%s-token" (include "iac-agent.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The coordinator's ServiceAccount. */}}
{{- define "iac-agent.serviceAccountName" -}}
{{- if .Values.coordinator.serviceAccount.create -}}
{{- default (include "iac-agent.coordinatorName" .) .Values.coordinator.serviceAccount.name -}}
{{- else -}}
{{- required "coordinator.serviceAccount.name is required when coordinator.serviceAccount.create is false" .Values.coordinator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Where agents and coordinator find the pool token: the Secret's key mounted as a file (not subPath, so
that a rotated Secret reaches running pods). */}}
{{- define "iac-agent.tokenDir" -}}/var/run/secrets/iac-pool-token{{- end -}}
{{- define "iac-agent.tokenFile" -}}{{ include "iac-agent.tokenDir" . }}/token{{- end -}}

{{/* The agent's data directory: the image's default, its $HOME and its VOLUME. */}}
{{- define "iac-agent.dataDir" -}}/var/lib/iac-agent{{- end -}}

{{/* The image reference. */}}
{{- define "iac-agent.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The drain timeout in seconds: agent.drainTimeoutSeconds, else the task timeout. */}}
{{- define "iac-agent.drainSeconds" -}}
{{- if kindIs "invalid" .Values.agent.drainTimeoutSeconds -}}
{{- .Values.agent.taskTimeoutSeconds | int -}}
{{- else -}}
{{- .Values.agent.drainTimeoutSeconds | int -}}
{{- end -}}
{{- end -}}

{{/* The agent pod's terminationGracePeriodSeconds: a running task may use the whole drain timeout, then be
interrupted (SIGINT, SIGKILL after the cancel grace), then the agent reports and exits; Kubernetes must not
SIGKILL it before. */}}
{{- define "iac-agent.agentGraceSeconds" -}}
{{- add (include "iac-agent.drainSeconds" . | int) (.Values.agent.cancelGraceSeconds | int) (.Values.agent.terminationMarginSeconds | int) -}}
{{- end -}}

{{/* Labels of every resource. */}}
{{- define "iac-agent.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "iac-agent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of the agent pods. Deliberately not upstream's app=iac-platform,component=agent,pool-id: an
upstream scaler still configured for this pool must never list (and delete) these pods. */}}
{{- define "iac-agent.agentSelectorLabels" -}}
app.kubernetes.io/name: {{ include "iac-agent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end -}}

{{/* Selector labels of the coordinator pods. */}}
{{- define "iac-agent.coordinatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "iac-agent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: coordinator
{{- end -}}
