{{/*
The agent sidecar snippet: named templates a resolver's pod template includes, so the agent
runs next to the DNS server and receives its dnstap on a unix socket in a shared emptyDir.

In this chart (see resolver-example.yaml), with `.` the chart's root context:

  metadata:
    labels:
      {{- include "snowtap.agentPodLabels" . | nindent 8 }}     # lets the NetworkPolicy admit it
    annotations:
      {{- include "snowtap.agentPodAnnotations" . | nindent 8 }}  # prometheus.io/* (metrics.scrapeAnnotations)
  spec:
    containers:
      - name: my-dns-server
        volumeMounts:
          {{- include "snowtap.agentSocketMount" . | nindent 10 }}   # dnstap socket directory
      {{- include "snowtap.agentSidecar" . | nindent 6 }}
    volumes:
      {{- include "snowtap.agentVolumes" . | nindent 6 }}

From a parent chart that lists snowtap as a dependency, pass the subchart's context:
`{{ include "snowtap.agentSidecar" .Subcharts.snowtap }}` (same for the other templates).
On Kubernetes >= 1.29 prefer `snowtap.agentNativeSidecar` under initContainers: the agent then
starts before the DNS server and stops after it, so the last frames are still relayed.

The DNS server writes dnstap to {{ agent.socketDir }}/{{ agent.socketName }} (Unbound:
dnstap-socket-path, BIND: dnstap-output unix, Knot: sink, PowerDNS/dnsdist: the socket path)
and connects whatever its user with the default agent.socketMode 0666 (the emptyDir is the
pod's own); with socketMode "0660" it must run as uid 10001 or group 10001 (pod fsGroup).
*/}}

{{- define "snowtap.agentPodLabels" -}}
snowtap.io/agent: "true"
{{- end }}

{{/*
prometheus.io/* annotations pointing at the agent's metrics port (metrics.scrapeAnnotations),
for resolver pods scraped by annotation. A pod has one such set: skip it when the DNS server's
own metrics already use the annotations (scrape the agent with the PodMonitor instead).
*/}}
{{- define "snowtap.agentPodAnnotations" -}}
{{- include "snowtap.scrapeAnnotations" (dict "root" . "port" .Values.agent.metricsPort) }}
{{- end }}

{{- define "snowtap.agentSocketPath" -}}
{{- printf "%s/%s" (trimSuffix "/" .Values.agent.socketDir) .Values.agent.socketName }}
{{- end }}

{{- define "snowtap.agentSocketMount" -}}
- name: snowtap-dnstap
  mountPath: {{ .Values.agent.socketDir }}
{{- end }}

{{- define "snowtap.agentSidecar" -}}
{{- include "snowtap.agentContainer" (dict "root" . "native" false) }}
{{- end }}

{{- define "snowtap.agentNativeSidecar" -}}
{{- include "snowtap.agentContainer" (dict "root" . "native" true) }}
{{- end }}

{{/* The container itself; call through the two names above. */}}
{{- define "snowtap.agentContainer" -}}
{{- $root := .root }}
{{- $a := $root.Values.agent }}
{{- $link := $root.Values.link -}}
- name: snowtap-agent
  image: {{ include "snowtap.image" $root }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  {{- if .native }}
  # A native sidecar: runs for the pod's whole life, stops after the DNS server.
  restartPolicy: Always
  {{- end }}
  args:
    - agent
    - --dnstap-socket={{ include "snowtap.agentSocketPath" $root }}
    - --dnstap-socket-mode={{ $a.socketMode }}
    - --enricher={{ include "snowtap.enricherAddress" $root }}
    - --metrics-listen=0.0.0.0:{{ $a.metricsPort }}
    - --switch-interval={{ $a.switchInterval }}
    {{- if ne (toString $a.activeConnections) "1" }}
    - --active-connections={{ $a.activeConnections }}
    {{- end }}
    - --buffer-bytes={{ int64 $a.bufferBytes }}
    - --when-full={{ $a.whenFull }}
    {{- if $a.spool.enabled }}
    - --spool-dir={{ $a.spool.dir }}
    - --spool-max-bytes={{ int64 $a.spool.maxBytes }}
    {{- end }}
    {{- if gt (int $a.sample) 1 }}
    - --sample={{ $a.sample }}
    {{- end }}
    {{- if lt (int $a.privacy.maskClientIpv4) 32 }}
    - --mask-client-ipv4={{ $a.privacy.maskClientIpv4 }}
    {{- end }}
    {{- if lt (int $a.privacy.maskClientIpv6) 128 }}
    - --mask-client-ipv6={{ $a.privacy.maskClientIpv6 }}
    {{- end }}
    {{- if $a.privacy.dropEcs }}
    - --drop-ecs
    {{- end }}
    {{- if $a.discovery }}
    - --discovery=k8s://{{ $root.Release.Namespace }}/{{ include "snowtap.enricher.fullname" $root }}
    {{- end }}
    {{- if $link.auth.existingSecret }}
    - --auth-token-file=/etc/snowtap/auth/{{ $link.auth.key }}
    {{- end }}
    {{- if ne (toString $link.secretReloadInterval) "10" }}
    - --secret-reload-interval={{ $link.secretReloadInterval }}
    {{- end }}
    {{- if $link.tls.enabled }}
    - --tls-ca=/etc/snowtap/tls/ca.crt
    {{- if $link.tls.clientAuth }}
    - --tls-cert=/etc/snowtap/tls/tls.crt
    - --tls-key=/etc/snowtap/tls/tls.key
    {{- end }}
    {{- end }}
    {{- range $a.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  env:
    # The agent id in every record id: the pod name (stable across container restarts).
    - name: SNOWTAP_ID
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    {{- with $a.nodeOptions }}
    - name: NODE_OPTIONS
      value: {{ . | quote }}
    {{- end }}
  ports:
    - name: snowtap-metrics
      containerPort: {{ $a.metricsPort }}
      protocol: TCP
  # No readiness probe on purpose: a sidecar's readiness is the pod's, and a slow or absent
  # enricher must never take the DNS server out of its Service.
  startupProbe:
    httpGet:
      path: /healthz
      port: snowtap-metrics
    periodSeconds: 1
    failureThreshold: 30
  livenessProbe:
    httpGet:
      path: /healthz
      port: snowtap-metrics
    periodSeconds: 10
    failureThreshold: 6
    timeoutSeconds: 3
  resources:
    {{- toYaml $a.resources | nindent 4 }}
  securityContext:
    {{- toYaml $a.securityContext | nindent 4 }}
  volumeMounts:
    - name: snowtap-dnstap
      mountPath: {{ $a.socketDir }}
    - name: snowtap-tmp
      mountPath: /tmp
    {{- if $a.spool.enabled }}
    - name: snowtap-spool
      mountPath: {{ $a.spool.dir }}
    {{- end }}
    {{- if $link.auth.existingSecret }}
    - name: snowtap-link-token
      mountPath: /etc/snowtap/auth
      readOnly: true
    {{- end }}
    {{- if $link.tls.enabled }}
    - name: snowtap-link-tls
      mountPath: /etc/snowtap/tls
      readOnly: true
    {{- end }}
{{- end }}

{{/*
The volumes the sidecar mounts. Secrets are looked up in the resolver's namespace: copy the
token Secret (and the TLS Secret) there when resolvers live elsewhere.
*/}}
{{- define "snowtap.agentVolumes" -}}
{{- $a := .Values.agent }}
{{- $link := .Values.link -}}
- name: snowtap-dnstap
  emptyDir: {}
- name: snowtap-tmp
  emptyDir:
    sizeLimit: 16Mi
{{- if $a.spool.enabled }}
- name: snowtap-spool
  emptyDir:
    sizeLimit: {{ $a.spool.sizeLimit }}
{{- end }}
{{- if $link.auth.existingSecret }}
- name: snowtap-link-token
  secret:
    secretName: {{ $link.auth.existingSecret }}
    items:
      - key: {{ $link.auth.key }}
        path: {{ $link.auth.key }}
    defaultMode: 0440
{{- end }}
{{- if $link.tls.enabled }}
- name: snowtap-link-tls
  secret:
    {{- if $link.tls.clientAuth }}
    secretName: {{ required "agent.tls.clientSecretName is required with link.tls.clientAuth" $a.tls.clientSecretName }}
    {{- else }}
    secretName: {{ $link.tls.secretName }}
    items:
      - key: ca.crt
        path: ca.crt
    {{- end }}
    defaultMode: 0440
{{- end }}
{{- end }}
