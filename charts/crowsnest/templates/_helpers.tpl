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

{{/*
The repositories the daemon writes to, as a JSON list: `git` (one entry)
or `repositories` (several; exactly one of the two). Each entry: `name`
(empty for `git`), `v` (its values), `label` (for messages), the Secrets
holding its git credentials and signing key, where they are mounted, and
the names of their volumes.
*/}}
{{- define "crowsnest.entries" -}}
{{- $out := list }}
{{- $full := include "crowsnest.fullname" . }}
{{- if .Values.repositories }}
{{- if .Values.git.url }}
{{- fail "give git.url (one repository) or repositories (several), not both" }}
{{- end }}
{{- $byUrl := dict }}
{{- $names := dict }}
{{- range $i, $r := .Values.repositories }}
{{- if hasKey $names $r.name }}
{{- fail (printf "repositories[%d]: the name %q is used twice (also repositories[%d]); names must be unique: they name the status section, the metric label and --repository" $i $r.name (get $names $r.name)) }}
{{- end }}
{{- $_ := set $names $r.name $i }}
{{- $auth := default dict $r.auth }}
{{- $signing := default dict $r.signing }}
{{- $entry := dict "name" $r.name "v" $r "label" (printf "repositories[%s]" $r.name) "gitSecret" (default (printf "%s-%s-git" $full $r.name) $auth.existingSecret) "signingSecret" (default (printf "%s-%s-signing" $full $r.name) $signing.existingSecret) "gitDir" (printf "/etc/crowsnest/repositories/%s/git" $r.name) "signingDir" (printf "/etc/crowsnest/repositories/%s/signing" $r.name) "gitVolume" (printf "repo-%d-git" $i) "signingVolume" (printf "repo-%d-signing" $i) "sharesAuth" false }}
{{- /* Entries on one URL share a clone, so one set of credentials: the first entry's Secret and mount. */}}
{{- with get $byUrl $r.url }}
{{- if not (deepEqual (default dict .v.auth) $auth) }}
{{- fail (printf "repositories[%s] and repositories[%s] use one url with different auth; entries on one URL share a clone and must have the same auth" .name $r.name) }}
{{- end }}
{{- $_ := set $entry "gitSecret" .gitSecret }}
{{- $_ := set $entry "gitDir" .gitDir }}
{{- $_ := set $entry "gitVolume" .gitVolume }}
{{- $_ := set $entry "sharesAuth" true }}
{{- else }}
{{- $_ := set $byUrl $r.url $entry }}
{{- end }}
{{- $out = append $out $entry }}
{{- end }}
{{- else }}
{{- if not .Values.git.url }}
{{- fail "git.url is required: the ssh:// or https:// URL of the repository crowsnest manages (or list several under repositories)" }}
{{- end }}
{{- $out = append $out (dict "sharesAuth" false "name" "" "v" .Values.git "label" "git" "gitSecret" (default (printf "%s-git" $full) .Values.git.auth.existingSecret) "signingSecret" (default (printf "%s-signing" $full) .Values.git.signing.existingSecret) "gitDir" "/etc/crowsnest/git" "signingDir" "/etc/crowsnest/signing" "gitVolume" "git" "signingVolume" "signing") }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* Whether some entry of repositories has trial secrets in its values. */}}
{{- define "crowsnest.trialRepositorySecrets" -}}
{{- range .Values.repositories }}
{{- $auth := default dict .auth }}
{{- $signing := default dict .signing }}
{{- if or $auth.sshKey $auth.password $signing.key }}true{{ end }}
{{- end }}
{{- end }}

{{/* For one entry (the argument): what its remote needs, from its URL scheme. */}}
{{- define "crowsnest.entryIsSSH" -}}
{{- if hasPrefix "ssh://" .v.url }}true{{ end }}
{{- end }}

{{/* The entry's git credentials Secret is mounted when its remote needs one. */}}
{{- define "crowsnest.entryAuthUsed" -}}
{{- $auth := default dict .v.auth }}
{{- if or (hasPrefix "ssh://" .v.url) (and (or (hasPrefix "https://" .v.url) (hasPrefix "http://" .v.url)) $auth.username) }}true{{ end }}
{{- end }}

{{- define "crowsnest.entrySSHPassphrase" -}}
{{- $auth := default dict .v.auth }}
{{- if $auth.existingSecret }}
{{- if $auth.existingSecretHasPassphrase }}true{{ end }}
{{- else if $auth.sshPassphrase }}true{{ end }}
{{- end }}

{{- define "crowsnest.entrySigningPassphrase" -}}
{{- $signing := default dict .v.signing }}
{{- if $signing.existingSecret }}
{{- if $signing.existingSecretHasPassphrase }}true{{ end }}
{{- else if $signing.passphrase }}true{{ end }}
{{- end }}

{{- define "crowsnest.entrySigned" -}}
{{- $signing := default dict .v.signing }}
{{- if $signing.format }}true{{ end }}
{{- end }}

{{/* One entry's keys of crowsnest.yaml (`git:` or an item of `repositories:`), as YAML. */}}
{{- define "crowsnest.entryConfig" -}}
{{- $v := .v }}
{{- $git := dict "url" $v.url "branch" (default "main" $v.branch) "path" (default "." $v.path) "policies" (default "policies" $v.policies) }}
{{- if .name }}{{ $_ := set $git "name" .name }}{{ end }}
{{- if $v.pushBranch }}{{ $_ := set $git "pushBranch" $v.pushBranch }}{{ end }}
{{- $author := default (dict "name" "crowsnest" "email" "crowsnest@localhost") $v.author }}
{{- $_ := set $git "author" (dict "name" $author.name "email" $author.email) }}
{{- if $v.messageTemplate }}{{ $_ := set $git "messageTemplate" $v.messageTemplate }}{{ end }}
{{- $authValues := default dict $v.auth }}
{{- $auth := dict }}
{{- if include "crowsnest.entryIsSSH" . }}
{{- $_ := set $auth "sshKeyFile" (printf "%s/identity" .gitDir) }}
{{- $_ := set $auth "knownHostsFile" (printf "%s/known_hosts" .gitDir) }}
{{- if include "crowsnest.entrySSHPassphrase" . }}{{ $_ := set $auth "sshPassphraseFile" (printf "%s/passphrase" .gitDir) }}{{ end }}
{{- else if include "crowsnest.entryAuthUsed" . }}
{{- $_ := set $auth "username" $authValues.username }}
{{- $_ := set $auth "passwordFile" (printf "%s/password" .gitDir) }}
{{- end }}
{{- if $auth }}{{ $_ := set $git "auth" $auth }}{{ end }}
{{- if include "crowsnest.entrySigned" . }}
{{- $signing := dict "format" $v.signing.format "keyFile" (printf "%s/key" .signingDir) }}
{{- if include "crowsnest.entrySigningPassphrase" . }}{{ $_ := set $signing "passphraseFile" (printf "%s/passphrase" .signingDir) }}{{ end }}
{{- $_ := set $git "signing" $signing }}
{{- end }}
{{- toYaml $git }}
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
{{- $entries := include "crowsnest.entries" . | fromJsonArray }}
{{- $repositories := list }}
{{- range $entries }}
{{- $repositories = append $repositories (include "crowsnest.entryConfig" . | fromYaml) }}
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
{{- $config := dict "scan" (dict "interval" .Values.scan.interval) "stateDir" "/var/lib/crowsnest" }}
{{- if .Values.repositories }}
{{- $_ := set $config "repositories" $repositories }}
{{- else }}
{{- $_ := set $config "git" (first $repositories) }}
{{- end }}
{{- if $registries }}{{ $_ := set $config "registries" $registries }}{{ end }}
{{- if .Values.sigstore.trustedRoot }}{{ $_ := set $config "sigstore" (dict "trustedRoot" "/etc/crowsnest/config/trusted_root.json") }}{{ end }}
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
        {{- range include "crowsnest.entries" . | fromJsonArray }}
        {{- if and (include "crowsnest.entryAuthUsed" .) (not .sharesAuth) }}
        - name: {{ .gitVolume }}
          mountPath: {{ .gitDir }}
          readOnly: true
        {{- end }}
        {{- if include "crowsnest.entrySigned" . }}
        - name: {{ .signingVolume }}
          mountPath: {{ .signingDir }}
          readOnly: true
        {{- end }}
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
    {{- range include "crowsnest.entries" . | fromJsonArray }}
    {{- if and (include "crowsnest.entryAuthUsed" .) (not .sharesAuth) }}
    - name: {{ .gitVolume }}
      secret:
        secretName: {{ .gitSecret }}
        defaultMode: 288  # octal 0440, written in decimal so YAML 1.1 and 1.2 agree
    {{- end }}
    {{- if include "crowsnest.entrySigned" . }}
    - name: {{ .signingVolume }}
      secret:
        secretName: {{ .signingSecret }}
        defaultMode: 288  # octal 0440, written in decimal so YAML 1.1 and 1.2 agree
    {{- end }}
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
