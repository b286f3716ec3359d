{{/*
Names, labels and small shared fragments. Kubernetes names are DNS labels: at most 63
characters, so every generated name is truncated and stripped of a trailing dash.
*/}}

{{- define "snowtap.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: release-chart, or the release alone when it already contains the chart name.
Component names append "-enricher" etc., so the base is cut to leave room for the suffix.
*/}}
{{- define "snowtap.fullname" -}}
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

{{- define "snowtap.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* A component's resource name: fullname-component, within 63 characters. */}}
{{- define "snowtap.componentName" -}}
{{- $base := include "snowtap.fullname" .root | trunc (int (sub 62 (len .component))) | trimSuffix "-" }}
{{- printf "%s-%s" $base .component }}
{{- end }}

{{- define "snowtap.enricher.fullname" -}}
{{- include "snowtap.componentName" (dict "root" . "component" "enricher") }}
{{- end }}

{{- define "snowtap.enricher.metricsServiceName" -}}
{{- include "snowtap.componentName" (dict "root" . "component" "enricher-metrics") }}
{{- end }}

{{- define "snowtap.agent.fullname" -}}
{{- include "snowtap.componentName" (dict "root" . "component" "agent") }}
{{- end }}

{{- define "snowtap.resolver.fullname" -}}
{{- include "snowtap.componentName" (dict "root" . "component" "resolver") }}
{{- end }}

{{/* Selector labels: stable for the life of a release (Deployment selectors are immutable). */}}
{{- define "snowtap.selectorLabels" -}}
app.kubernetes.io/name: {{ include "snowtap.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Common labels: selector labels plus version and ownership, for metadata only. */}}
{{- define "snowtap.labels" -}}
helm.sh/chart: {{ include "snowtap.chart" . }}
{{ include "snowtap.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: snowtap
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Component variants: call with (dict "root" $ "component" "enricher"). */}}
{{- define "snowtap.componentLabels" -}}
{{ include "snowtap.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "snowtap.componentSelectorLabels" -}}
{{ include "snowtap.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "snowtap.enricher.serviceAccountName" -}}
{{- if .Values.enricher.serviceAccount.create }}
{{- default (include "snowtap.enricher.fullname" .) .Values.enricher.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.enricher.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "snowtap.agent.serviceAccountName" -}}
{{- if .Values.agent.serviceAccount.create }}
{{- default (include "snowtap.agent.fullname" .) .Values.agent.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.agent.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: a digest wins over the tag; the tag defaults to the appVersion. */}}
{{- define "snowtap.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* host:port agents dial: the link Service's cluster DNS name unless overridden. */}}
{{- define "snowtap.enricherAddress" -}}
{{- if .Values.agent.enricherAddress }}
{{- .Values.agent.enricherAddress }}
{{- else }}
{{- printf "%s.%s.svc:%d" (include "snowtap.enricher.fullname" .) .Release.Namespace (int .Values.link.port) }}
{{- end }}
{{- end }}

{{/*
Which autoscaler the enricher gets: "keda" when asked for, or in auto mode when the cluster
serves the KEDA API; "hpa" when asked for or as the auto fallback; "none" otherwise.
*/}}
{{- define "snowtap.autoscaler" -}}
{{- $mode := .Values.autoscaling.mode }}
{{- if eq $mode "auto" }}
{{- if .Capabilities.APIVersions.Has "keda.sh/v1alpha1" }}keda{{ else }}hpa{{ end }}
{{- else }}
{{- $mode }}
{{- end }}
{{- end }}

{{/* The enricher config file (keys are the flag names, README "Commands"); its hash rolls the pods. */}}
{{- define "snowtap.enricher.config" -}}
{{- $e := .Values.enricher }}
{{- $cfg := dict
  "listen" (printf "%s:%d" $e.listenHost (int .Values.link.port))
  "metrics-listen" (printf "0.0.0.0:%d" (int $e.metricsPort))
  "output-dir" $e.outputDir
  "rotate-max-rows" (int64 $e.rotate.maxRows)
  "rotate-max-bytes" (int64 $e.rotate.maxBytes)
  "rotate-max-age" $e.rotate.maxAge
  "compression" $e.compression
  "drain-timeout" $e.drainTimeout
  "mask-client-ipv4" (int $e.privacy.maskClientIpv4)
  "mask-client-ipv6" (int $e.privacy.maskClientIpv6)
  "drop-ecs" $e.privacy.dropEcs
  "secret-reload-interval" .Values.link.secretReloadInterval
  "partition-by" $e.partition.by
  "max-open-tenants" (int $e.partition.maxOpenTenants)
  "tenant-chunk-rate" $e.partition.tenantChunkRate
  "overload-drain" $e.overloadDrain.enabled
  "overload-high" $e.overloadDrain.high
  "overload-low" $e.overloadDrain.low
  "overload-enter" $e.overloadDrain.enterSeconds
  "overload-leave" $e.overloadDrain.leaveSeconds
  "overload-drain-fraction" $e.overloadDrain.fraction
  "overload-drain-interval" $e.overloadDrain.intervalSeconds
  "overload-drain-cooldown" $e.overloadDrain.cooldownSeconds
}}
{{- if $e.privacy.pseudonymize.existingSecret }}
{{- $_ := set $cfg "pseudonymize-clients" (printf "/etc/snowtap/pseudonym/%s" $e.privacy.pseudonymize.key) }}
{{- end }}
{{- if $e.columns }}
{{- $_ := set $cfg "columns" (join "," $e.columns) }}
{{- end }}
{{- if $e.output.url }}
{{- $_ := set $cfg "output-url" $e.output.url }}
{{- $_ := set $cfg "output-stale-after" $e.output.staleAfter }}
{{- if not (kindIs "invalid" $e.output.ackInterval) }}
{{- $_ := set $cfg "output-ack-interval" $e.output.ackInterval }}
{{- end }}
{{- end }}
{{- if eq $e.aggregates.mode "hourly" }}
{{- $_ := set $cfg "aggregates" "hourly" }}
{{- $_ := set $cfg "rows" $e.aggregates.rows }}
{{- $_ := set $cfg "aggregates-grace" $e.aggregates.grace }}
{{- if $e.aggregates.key.existingSecret }}
{{- $_ := set $cfg "aggregates-key" (printf "/etc/snowtap/aggregates/%s" $e.aggregates.key.key) }}
{{- end }}
{{- end }}
{{- if $e.policy.url }}
{{- $_ := set $cfg "policy-url" $e.policy.url }}
{{- $_ := set $cfg "policy-interval" $e.policy.interval }}
{{- $_ := set $cfg "policy-max-bytes" (int64 $e.policy.maxBytes) }}
{{- end }}
{{- if $e.policy.configMap }}
{{- $_ := set $cfg "policy-file" (printf "/etc/snowtap/policy/%s" $e.policy.configMapKey) }}
{{- $_ := set $cfg "policy-interval" $e.policy.interval }}
{{- $_ := set $cfg "policy-max-bytes" (int64 $e.policy.maxBytes) }}
{{- end }}
{{- if gt (int $e.maxConnections) 0 }}
{{- $_ := set $cfg "max-connections" (int $e.maxConnections) }}
{{- end }}
{{- if .Values.link.auth.existingSecret }}
{{- $_ := set $cfg "auth-token-file" (printf "/etc/snowtap/auth/%s" .Values.link.auth.key) }}
{{- end }}
{{- if .Values.link.tls.enabled }}
{{- $_ := set $cfg "tls-cert" "/etc/snowtap/tls/tls.crt" }}
{{- $_ := set $cfg "tls-key" "/etc/snowtap/tls/tls.key" }}
{{- if .Values.link.tls.clientAuth }}
{{- $_ := set $cfg "tls-ca" "/etc/snowtap/tls/ca.crt" }}
{{- end }}
{{- end }}
{{- toYaml (merge (deepCopy $e.extraConfig) $cfg) }}
{{- end }}

{{/* The chunk volume (a volume source without its name), per blob.type. */}}
{{- define "snowtap.blobVolume" -}}
{{- if eq .Values.blob.type "pvc" -}}
persistentVolumeClaim:
  claimName: {{ default (include "snowtap.componentName" (dict "root" . "component" "data")) .Values.blob.pvc.existingClaim }}
{{- else if eq .Values.blob.type "csi" -}}
csi:
  driver: blob.csi.azure.com
  volumeAttributes:
    {{- $attrs := dict "containerName" .Values.blob.csi.containerName "secretName" .Values.blob.csi.secretName "mountOptions" .Values.blob.csi.mountOptions }}
    {{- toYaml (merge (deepCopy .Values.blob.csi.extraAttributes) $attrs) | nindent 4 }}
{{- else -}}
emptyDir:
  sizeLimit: {{ .Values.blob.emptyDir.sizeLimit }}
{{- end }}
{{- end }}

{{/*
Scaling and alerting selectors. They use only labels the processes export themselves, so a
query answers under every scrape path (ServiceMonitor, PodMonitor, prometheus.io annotations,
Alloy, vmagent, managed Prometheus): target labels differ per path (service=, pod label
copies, job names), metric labels do not.
- agents of this release: snowtap_agent_info{enricher="<the address the sidecar is given>"};
- enrichers of this release: snowtap_enricher_info{id=~"<Deployment>-<rs hash>-<pod hash>"}
  (the chart sets the enricher id to the pod name).
Joins are on(instance, job): every series of one scrape target shares both. `max by (id ...)`
first, so a pod scraped by two paths at once (e.g. a ServiceMonitor plus annotations) counts
once.
*/}}
{{- define "snowtap.extraSelector" -}}
{{- with .Values.autoscaling.keda.extraSelector }},{{ . }}{{ end }}
{{- end }}

{{- define "snowtap.agentInfoSelector" -}}
{{- printf "snowtap_agent_info{enricher=%s%s}" (include "snowtap.enricherAddress" . | quote) (include "snowtap.extraSelector" .) }}
{{- end }}

{{/*
Pod names are <Deployment>-<ReplicaSet hash>-<5 chars>; Kubernetes cuts the generated prefix to
58 characters, so for long names only the cut prefix is known. Dots are the only regex
metacharacter a DNS name can hold.
*/}}
{{- define "snowtap.enricherIdRegex" -}}
{{- $d := include "snowtap.enricher.fullname" . }}
{{- if le (len $d) 46 }}
{{- printf "%s-[a-z0-9]+-[a-z0-9]+" ($d | replace "." "[.]") }}
{{- else }}
{{- printf "%s[-a-z0-9]*" ($d | trunc 57 | replace "." "[.]") }}
{{- end }}
{{- end }}

{{- define "snowtap.enricherInfoSelector" -}}
{{- printf "snowtap_enricher_info{id=~\"%s\"%s}" (include "snowtap.enricherIdRegex" .) (include "snowtap.extraSelector" .) }}
{{- end }}

{{/* (dict "root" $ "expr" "<agent series expression>"): the expression per agent of this release. */}}
{{- define "snowtap.perAgent" -}}
{{- printf "max by (id, incarnation) ((%s) * on(instance, job) group_left(id, incarnation) %s)" .expr (include "snowtap.agentInfoSelector" .root) }}
{{- end }}

{{/* (dict "root" $ "expr" "<enricher series expression>"): the expression per enricher of this release. */}}
{{- define "snowtap.perEnricher" -}}
{{- printf "max by (id) ((%s) * on(instance, job) group_left(id) %s)" .expr (include "snowtap.enricherInfoSelector" .root) }}
{{- end }}

{{/* The default trigger queries (autoscaling.keda.<trigger>.query overrides each). */}}
{{- define "snowtap.query.recordsOffered" -}}
{{- $w := .Values.autoscaling.keda.rateWindow }}
{{- printf "sum(%s)" (include "snowtap.perAgent" (dict "root" . "expr" (printf "rate(snowtap_agent_records_in_total[%s]) - rate(snowtap_agent_records_sampled_out_total[%s])" $w $w))) }}
{{- end }}

{{- define "snowtap.query.agentBacklog" -}}
{{- printf "sum(%s)" (include "snowtap.perAgent" (dict "root" . "expr" "snowtap_agent_backlog_bytes")) }}
{{- end }}

{{- define "snowtap.query.enricherBusy" -}}
{{- printf "sum(%s)" (include "snowtap.perEnricher" (dict "root" . "expr" (printf "rate(snowtap_enricher_event_loop_busy_seconds_total[%s])" .Values.autoscaling.keda.rateWindow))) }}
{{- end }}

{{/* prometheus.io/* pod annotations for annotation-based scrapers, when enabled. */}}
{{- define "snowtap.scrapeAnnotations" -}}
{{- if .root.Values.metrics.scrapeAnnotations.enabled -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}
