{{/* The chart name, truncated to 63 characters (a DNS label). */}}
{{- define "orchestrator-sidecar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release-qualified name, truncated to 63 characters. */}}
{{- define "orchestrator-sidecar.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's name: the full name with a suffix, truncated to 63 characters. */}}
{{- define "orchestrator-sidecar.component" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "orchestrator-sidecar.fullname" $root | trunc (int (sub 62 (len (index . 1))))) (index . 1) | trimSuffix "-" -}}
{{- end -}}

{{/* The labels of every object: the one place they are defined. Call with (list $ "component"). */}}
{{- define "orchestrator-sidecar.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "orchestrator-sidecar.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
{{- with $root.Values.commonLabels }}
{{- range $key := list "app.kubernetes.io/name" "app.kubernetes.io/instance" "app.kubernetes.io/component" "app.kubernetes.io/managed-by" "app.kubernetes.io/version" "helm.sh/chart" "orchestrator.sidecar/inject" }}
{{- if hasKey $root.Values.commonLabels $key }}
{{- fail (printf "commonLabels may not set %s: the chart sets it (the injector's selectors match it, and a second value replaced the chart's, so the API server refused the Deployment)" $key) }}
{{- end }}
{{- end }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The labels a selector matches. Call with (list $ "component"). */}}
{{- define "orchestrator-sidecar.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "orchestrator-sidecar.name" $root | quote }}
app.kubernetes.io/instance: {{ $root.Release.Name | quote }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* The sidecar image (also the injector's: one image serves both): repository:tag, and @digest
     when one is given (the kubelet then pulls exactly that image; the tag only names it). */}}
{{- define "orchestrator-sidecar.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- with .Values.image.digest }}@{{ . }}{{ end -}}
{{- end -}}

{{- define "orchestrator-sidecar.configMapName" -}}
{{- include "orchestrator-sidecar.component" (list . "config") -}}
{{- end -}}

{{/* The injector's name, also its Service's: a DNS-1035 label (no dots, a letter first), which a
     release name such as `v1.2` or `9lives`, both valid for Helm, would not give as is. */}}
{{- define "orchestrator-sidecar.injectorName" -}}
{{- $name := include "orchestrator-sidecar.component" (list . "injector") | replace "." "-" -}}
{{- if regexMatch "^[a-z]" $name -}}
{{- $name -}}
{{- else -}}
{{- printf "i%s" $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "orchestrator-sidecar.tlsSecretName" -}}
{{- include "orchestrator-sidecar.component" (list . "injector-tls") -}}
{{- end -}}

{{/* The webhook's name: a fully qualified name, unique per release. */}}
{{- define "orchestrator-sidecar.webhookName" -}}
{{- printf "%s.inject.orchestrator.sidecar" (include "orchestrator-sidecar.fullname" . | trunc 40 | trimSuffix "-") -}}
{{- end -}}

{{/* Non-root, read-only root filesystem, no privilege escalation, no capabilities. */}}
{{- define "orchestrator-sidecar.securityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsUser }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* A Kubernetes quantity as a number (`100m` 0.1, `1Ki` 1024, `1e3` 1000), to compare two. */}}
{{- define "orchestrator-sidecar.quantity" -}}
{{- $text := toString . | trimPrefix "+" -}}
{{- $factors := dict "m" 0.001 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 -}}
{{- $suffix := regexFind "(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)$" $text -}}
{{- if $suffix -}}
{{- mulf (trimSuffix $suffix $text | float64) (index $factors $suffix) -}}
{{- else -}}
{{- float64 $text -}}
{{- end -}}
{{- end -}}
