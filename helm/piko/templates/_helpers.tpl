{{/*
The chart name, or nameOverride. Truncated to 63 characters: a label value can be no longer.
*/}}
{{- define "piko.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name: fullnameOverride, else "<release>-<chart>", else just the
release name when it already contains the chart name ("piko" for `helm install piko`). Truncated
to 40 characters so that "<fullname>-operator-metrics", a Service name, fits in 63.
*/}}
{{- define "piko.fullname" -}}
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

{{/*
Name of the operator's Deployment, ClusterRole and their bindings.
*/}}
{{- define "piko.operatorName" -}}
{{- printf "%s-operator" (include "piko.fullname" .) }}
{{- end }}

{{/*
"piko-0.1.0", for the helm.sh/chart label.
*/}}
{{- define "piko.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of the operator's pods, and the selector of its Deployment and metrics Service. The
component keeps them apart from the data-plane pods a PikoCluster named like the release would
have (app.kubernetes.io/component: dataplane).
*/}}
{{- define "piko.selectorLabels" -}}
app.kubernetes.io/name: {{ include "piko.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
Labels of every object the chart creates.
*/}}
{{- define "piko.commonLabels" -}}
helm.sh/chart: {{ include "piko.chart" . }}
app.kubernetes.io/name: {{ include "piko.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: piko
{{- end }}

{{/*
Labels of the operator's objects.
*/}}
{{- define "piko.labels" -}}
{{ include "piko.commonLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
The operator's ServiceAccount.
*/}}
{{- define "piko.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "piko.operatorName" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name must name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: a digest pins it, else the tag, else the chart's appVersion.
*/}}
{{- define "piko.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The name of the PikoCluster created from values. PikoCluster names are limited to 42 characters.
*/}}
{{- define "piko.pikoClusterName" -}}
{{- default (include "piko.fullname" .) .Values.pikoCluster.name | trunc 42 | trimSuffix "-" }}
{{- end }}

{{/*
Values that the schema alone cannot relate, checked once, from the Deployment.
*/}}
{{- define "piko.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.operator.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs operator.leaderElection.enabled: two active operators would fight over the same objects" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.service.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.service.enabled: the ServiceMonitor scrapes that Service" }}
{{- end }}
{{- if and .Values.pikoCluster.enabled .Values.operator.watchNamespaces (not (has .Release.Namespace .Values.operator.watchNamespaces)) }}
{{- fail (printf "pikoCluster.enabled creates the PikoCluster in %s, which an operator watching only %s never reconciles" .Release.Namespace (join ", " .Values.operator.watchNamespaces)) }}
{{- end }}
{{- end }}
