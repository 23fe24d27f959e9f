{{/* Names and labels. */}}
{{- define "crowsnest.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "crowsnest.fullname" -}}
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

{{- define "crowsnest.selectorLabels" -}}
app.kubernetes.io/name: {{ include "crowsnest.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "crowsnest.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "crowsnest.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "crowsnest.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "crowsnest.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "crowsnest.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* What the git remote needs, from its URL scheme. */}}
{{- define "crowsnest.gitIsSSH" -}}
{{- if hasPrefix "ssh://" .Values.git.url }}true{{ end }}
{{- end }}

{{- define "crowsnest.gitIsHTTP" -}}
{{- if or (hasPrefix "https://" .Values.git.url) (hasPrefix "http://" .Values.git.url) }}true{{ end }}
{{- end }}

{{/* The git credentials Secret is mounted when the remote needs one. */}}
{{- define "crowsnest.gitAuthUsed" -}}
{{- if or (include "crowsnest.gitIsSSH" .) (and (include "crowsnest.gitIsHTTP" .) .Values.git.auth.username) }}true{{ end }}
{{- end }}

{{- define "crowsnest.gitSSHPassphrase" -}}
{{- if .Values.git.auth.existingSecret }}
{{- if .Values.git.auth.existingSecretHasPassphrase }}true{{ end }}
{{- else if .Values.git.auth.sshPassphrase }}true{{ end }}
{{- end }}

{{- define "crowsnest.gitSecretName" -}}
{{- default (printf "%s-git" (include "crowsnest.fullname" .)) .Values.git.auth.existingSecret }}
{{- end }}

{{- define "crowsnest.signingPassphrase" -}}
{{- if .Values.git.signing.existingSecret }}
{{- if .Values.git.signing.existingSecretHasPassphrase }}true{{ end }}
{{- else if .Values.git.signing.passphrase }}true{{ end }}
{{- end }}

{{- define "crowsnest.signingSecretName" -}}
{{- default (printf "%s-signing" (include "crowsnest.fullname" .)) .Values.git.signing.existingSecret }}
{{- end }}

{{- define "crowsnest.dockerConfigUsed" -}}
{{- if or .Values.registries.dockerConfig.existingSecret .Values.registries.dockerConfig.json }}true{{ end }}
{{- end }}

{{- define "crowsnest.dockerSecretName" -}}
{{- default (printf "%s-docker" (include "crowsnest.fullname" .)) .Values.registries.dockerConfig.existingSecret }}
{{- end }}

{{- define "crowsnest.webhookSecretName" -}}
{{- default (printf "%s-webhook" (include "crowsnest.fullname" .)) .Values.http.webhookToken.existingSecret }}
{{- end }}

{{/*
crowsnest.yaml (PRODUCT.md §3), built as a dict and written with toYaml so
every string is quoted correctly. Paths are where the volumes are mounted
in the pod (see the workload template).
*/}}
{{- define "crowsnest.config" -}}
{{- $git := dict "url" (required "git.url is required: the ssh:// or https:// URL of the repository crowsnest manages" .Values.git.url) "branch" .Values.git.branch "path" .Values.git.path "policies" .Values.git.policies }}
{{- if .Values.git.pushBranch }}{{ $_ := set $git "pushBranch" .Values.git.pushBranch }}{{ end }}
{{- $_ := set $git "author" (dict "name" .Values.git.author.name "email" .Values.git.author.email) }}
{{- if .Values.git.messageTemplate }}{{ $_ := set $git "messageTemplate" .Values.git.messageTemplate }}{{ end }}
{{- $auth := dict }}
{{- if include "crowsnest.gitIsSSH" . }}
{{- $_ := set $auth "sshKeyFile" "/etc/crowsnest/git/identity" }}
{{- $_ := set $auth "knownHostsFile" "/etc/crowsnest/git/known_hosts" }}
{{- if include "crowsnest.gitSSHPassphrase" . }}{{ $_ := set $auth "sshPassphraseFile" "/etc/crowsnest/git/passphrase" }}{{ end }}
{{- else if and (include "crowsnest.gitIsHTTP" .) .Values.git.auth.username }}
{{- $_ := set $auth "username" .Values.git.auth.username }}
{{- $_ := set $auth "passwordFile" "/etc/crowsnest/git/password" }}
{{- end }}
{{- if $auth }}{{ $_ := set $git "auth" $auth }}{{ end }}
{{- if .Values.git.signing.format }}
{{- $signing := dict "format" .Values.git.signing.format "keyFile" "/etc/crowsnest/signing/key" }}
{{- if include "crowsnest.signingPassphrase" . }}{{ $_ := set $signing "passphraseFile" "/etc/crowsnest/signing/passphrase" }}{{ end }}
{{- $_ := set $git "signing" $signing }}
{{- end }}
{{- $registries := dict }}
{{- if include "crowsnest.dockerConfigUsed" . }}{{ $_ := set $registries "dockerConfig" "/etc/crowsnest/docker/config.json" }}{{ end }}
{{- $hosts := list }}
{{- range $i, $h := .Values.registries.hosts }}
{{- $host := dict "host" $h.host }}
{{- if $h.insecure }}{{ $_ := set $host "insecure" true }}{{ end }}
{{- if $h.username }}{{ $_ := set $host "username" $h.username }}{{ end }}
{{- if $h.passwordSecret }}{{ $_ := set $host "passwordFile" (printf "/etc/crowsnest/registries/%d/password" $i) }}{{ end }}
{{- if $h.caSecret }}{{ $_ := set $host "caFile" (printf "/etc/crowsnest/registries/%d/ca.crt" $i) }}{{ end }}
{{- $hosts = append $hosts $host }}
{{- end }}
{{- if $hosts }}{{ $_ := set $registries "hosts" $hosts }}{{ end }}
{{- $config := dict "git" $git "scan" (dict "interval" .Values.scan.interval) "stateDir" "/var/lib/crowsnest" }}
{{- if $registries }}{{ $_ := set $config "registries" $registries }}{{ end }}
{{- $_ := set $config "http" (dict "listen" (printf "0.0.0.0:%d" (int .Values.http.port)) "webhookTokenFile" "/etc/crowsnest/webhook/token") }}
{{- toYaml $config }}
{{- end }}

{{- define "crowsnest.pvcSpec" -}}
accessModes:
  {{- toYaml .Values.persistence.accessModes | nindent 2 }}
{{- with .Values.persistence.storageClassName }}
storageClassName: {{ . | quote }}
{{- end }}
resources:
  requests:
    storage: {{ .Values.persistence.size | quote }}
{{- end }}

{{/* The pod, shared by the Deployment (shards: 1) and the StatefulSet (shards > 1). */}}
{{- define "crowsnest.podTemplate" -}}
metadata:
  labels:
    {{- include "crowsnest.selectorLabels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # Roll the pods when crowsnest.yaml changes.
    checksum/config: {{ include "crowsnest.config" . | sha256sum }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "crowsnest.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
  enableServiceLinks: false
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . | quote }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  containers:
    - name: crowsnest
      image: {{ include "crowsnest.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args: ["run", "--config", "/etc/crowsnest/config/crowsnest.yaml"]
      env:
        - name: CROWSNEST_LOG
          value: {{ .Values.log.level | quote }}
        - name: CROWSNEST_LOG_FORMAT
          value: {{ .Values.log.format | quote }}
        {{- if gt (int .Values.shards) 1 }}
        # Shard i/N without a shell: the StatefulSet labels each pod with its
        # ordinal, the downward API hands it over, and Kubernetes expands
        # $(POD_INDEX) in the next variable.
        - name: POD_INDEX
          valueFrom:
            fieldRef:
              fieldPath: metadata.labels['apps.kubernetes.io/pod-index']
        - name: CROWSNEST_SHARD
          value: "$(POD_INDEX)/{{ int .Values.shards }}"
        {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: http
          containerPort: {{ .Values.http.port }}
          protocol: TCP
      {{- with .Values.livenessProbe }}
      livenessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.readinessProbe }}
      readinessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/crowsnest/config
          readOnly: true
        - name: state
          mountPath: /var/lib/crowsnest
        - name: tmp
          mountPath: /tmp
        - name: webhook
          mountPath: /etc/crowsnest/webhook
          readOnly: true
        {{- if include "crowsnest.gitAuthUsed" . }}
        - name: git
          mountPath: /etc/crowsnest/git
          readOnly: true
        {{- end }}
        {{- if .Values.git.signing.format }}
        - name: signing
          mountPath: /etc/crowsnest/signing
          readOnly: true
        {{- end }}
        {{- if include "crowsnest.dockerConfigUsed" . }}
        - name: docker
          mountPath: /etc/crowsnest/docker
          readOnly: true
        {{- end }}
        {{- range $i, $h := .Values.registries.hosts }}
        {{- if or $h.passwordSecret $h.caSecret }}
        - name: registry-{{ $i }}
          mountPath: /etc/crowsnest/registries/{{ $i }}
          readOnly: true
        {{- end }}
        {{- end }}
        {{- with .Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "crowsnest.fullname" . }}
    {{- if le (int .Values.shards) 1 }}
    {{- if .Values.persistence.enabled }}
    - name: state
      persistentVolumeClaim:
        claimName: {{ default (printf "%s-state" (include "crowsnest.fullname" .)) .Values.persistence.existingClaim }}
    {{- else }}
    - name: state
      emptyDir:
        sizeLimit: {{ .Values.persistence.emptyDirSizeLimit | quote }}
    {{- end }}
    {{- else if not .Values.persistence.enabled }}
    - name: state
      emptyDir:
        sizeLimit: {{ .Values.persistence.emptyDirSizeLimit | quote }}
    {{- end }}
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    - name: webhook
      secret:
        secretName: {{ include "crowsnest.webhookSecretName" . }}
        defaultMode: 288  # octal 0440, written in decimal so YAML 1.1 and 1.2 agree
        items:
          - key: token
            path: token
    {{- if include "crowsnest.gitAuthUsed" . }}
    - name: git
      secret:
        secretName: {{ include "crowsnest.gitSecretName" . }}
        defaultMode: 288  # octal 0440, written in decimal so YAML 1.1 and 1.2 agree
    {{- end }}
    {{- if .Values.git.signing.format }}
    - name: signing
      secret:
        secretName: {{ include "crowsnest.signingSecretName" . }}
        defaultMode: 288  # octal 0440, written in decimal so YAML 1.1 and 1.2 agree
    {{- end }}
    {{- if include "crowsnest.dockerConfigUsed" . }}
    - name: docker
      secret:
        secretName: {{ include "crowsnest.dockerSecretName" . }}
        defaultMode: 288  # octal 0440, written in decimal so YAML 1.1 and 1.2 agree
        items:
          - key: .dockerconfigjson
            path: config.json
    {{- end }}
    {{- range $i, $h := .Values.registries.hosts }}
    {{- if or $h.passwordSecret $h.caSecret }}
    - name: registry-{{ $i }}
      projected:
        defaultMode: 288  # octal 0440, written in decimal so YAML 1.1 and 1.2 agree
        sources:
          {{- with $h.passwordSecret }}
          - secret:
              name: {{ .name }}
              items:
                - key: {{ .key }}
                  path: password
          {{- end }}
          {{- with $h.caSecret }}
          - secret:
              name: {{ .name }}
              items:
                - key: {{ .key }}
                  path: ca.crt
          {{- end }}
    {{- end }}
    {{- end }}
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
