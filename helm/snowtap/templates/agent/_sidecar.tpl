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

{{/*
The container itself; call through the two names above (or standalone.yaml with standalone
true: dnstap over TCP from the Service instead of the unix socket, a readiness probe, and the
standaloneAgent.* input settings).
*/}}
{{- define "snowtap.agentContainer" -}}
{{- $root := .root }}
{{- $a := $root.Values.agent }}
{{- $s := $root.Values.standaloneAgent }}
{{- $standalone := eq (toString .standalone) "true" }}
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
    {{- if $standalone }}
    - --dnstap-tcp=0.0.0.0:{{ $s.port }}
    {{- with $s.allow }}
    - --dnstap-allow={{ join "," . }}
    {{- end }}
    - --dnstap-max-connections={{ $s.maxConnections }}
    - --dnstap-handshake-timeout={{ $s.handshakeTimeout }}
    {{- if $s.tls.secretName }}
    - --dnstap-tls-cert=/etc/snowtap/dnstap-tls/tls.crt
    - --dnstap-tls-key=/etc/snowtap/dnstap-tls/tls.key
    {{- if $s.tls.clientCA }}
    - --dnstap-tls-ca=/etc/snowtap/dnstap-tls/ca.crt
    {{- end }}
    {{- end }}
    {{- else }}
    - --dnstap-socket={{ include "snowtap.agentSocketPath" $root }}
    - --dnstap-socket-mode={{ $a.socketMode }}
    {{- end }}
    - --enricher={{ include "snowtap.enricherAddress" $root }}
    - --metrics-listen=0.0.0.0:{{ $a.metricsPort }}
    - --switch-interval={{ $a.switchInterval }}
    - --saturated-switch={{ $a.saturatedSwitch }}
    {{- if ne (toString $a.activeConnections) "1" }}
    - --active-connections={{ $a.activeConnections }}
    {{- end }}
    - --buffer-bytes={{ int64 $a.bufferBytes }}
    - --when-full={{ $a.whenFull }}
    {{- if ne $a.runtime "lean" }}
    - --runtime={{ $a.runtime }}
    {{- end }}
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
    {{- if $standalone }}
    {{- range $s.extraArgs }}
    - {{ . | quote }}
    {{- end }}
    {{- end }}
  env:
    # The agent id in every record id: the pod name (stable across container restarts).
    {{- /* A standalone DaemonSet: the node name, stable like the node's hostPath spool. */}}
    - name: SNOWTAP_ID
      valueFrom:
        fieldRef:
          fieldPath: {{ if and $standalone (eq $s.kind "DaemonSet") }}spec.nodeName{{ else }}metadata.name{{ end }}
    {{- with $a.nodeOptions }}
    - name: NODE_OPTIONS
      value: {{ . | quote }}
    {{- end }}
  ports:
    - name: snowtap-metrics
      containerPort: {{ $a.metricsPort }}
      protocol: TCP
    {{- if $standalone }}
    - name: dnstap
      containerPort: {{ $s.port }}
      protocol: TCP
    {{- end }}
  {{- if $standalone }}
  # A Service backend: out of it while not ready (stopping, or not yet listening).
  readinessProbe:
    httpGet:
      path: /readyz
      port: snowtap-metrics
    periodSeconds: 5
    failureThreshold: 2
  {{- else }}
  # No readiness probe on purpose: a sidecar's readiness is the pod's, and a slow or absent
  # enricher must never take the DNS server out of its Service.
  {{- end }}
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
    {{- toYaml (ternary $s.resources $a.resources (and $standalone (not (empty $s.resources)))) | nindent 4 }}
  securityContext:
    {{- toYaml $a.securityContext | nindent 4 }}
  volumeMounts:
    {{- if $standalone }}
    {{- if $s.tls.secretName }}
    - name: snowtap-dnstap-tls
      mountPath: /etc/snowtap/dnstap-tls
      readOnly: true
    {{- end }}
    {{- else }}
    - name: snowtap-dnstap
      mountPath: {{ $a.socketDir }}
    {{- end }}
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
{{- include "snowtap.agentVolumeList" (dict "root" . "standalone" false) | trim }}
{{- end }}

{{/* The volumes of either form; standalone: no socket directory, the spool volume of standaloneAgent.spoolVolume, the dnstap TLS Secret. */}}
{{- define "snowtap.agentVolumeList" -}}
{{- $root := .root }}
{{- $a := $root.Values.agent }}
{{- $s := $root.Values.standaloneAgent }}
{{- $link := $root.Values.link -}}
{{- if not .standalone }}
- name: snowtap-dnstap
  emptyDir: {}
{{- end }}
- name: snowtap-tmp
  emptyDir:
    sizeLimit: 16Mi
{{- if $a.spool.enabled }}
- name: snowtap-spool
  {{- if and .standalone $s.spoolVolume }}
  {{- toYaml $s.spoolVolume | nindent 2 }}
  {{- else }}
  emptyDir:
    sizeLimit: {{ $a.spool.sizeLimit }}
  {{- end }}
{{- end }}
{{- if and .standalone $s.tls.secretName }}
- name: snowtap-dnstap-tls
  secret:
    secretName: {{ $s.tls.secretName }}
    defaultMode: 0440
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
