{{/*
Chart name, overridable.
*/}}
{{- define "rbd-provisioner.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name; 63 characters at most because it names Kubernetes objects.
A release name that already contains the chart name is used as is.
*/}}
{{- define "rbd-provisioner.fullname" -}}
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

{{- define "rbd-provisioner.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rbd-provisioner.labels" -}}
helm.sh/chart: {{ include "rbd-provisioner.chart" . }}
{{ include "rbd-provisioner.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "rbd-provisioner.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rbd-provisioner.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "rbd-provisioner.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rbd-provisioner.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "rbd-provisioner.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
The Lease the replicas compete for, derived as the controller derives it; the chart passes it
explicitly all the same, so that the Role's resourceNames and the controller cannot disagree.
*/}}
{{- define "rbd-provisioner.leaseName" -}}
{{- .Values.leaderElection.leaseName | default (.Values.provisionerName | lower | replace "." "-" | replace "/" "-") }}
{{- end }}

{{/*
A secret block's namespace: its own, or the release's.
Call with (dict "root" $ "secret" $secret).
*/}}
{{- define "rbd-provisioner.secretNamespace" -}}
{{- .secret.namespace | default .root.Release.Namespace }}
{{- end }}

{{/*
A StorageClass's parameters as YAML: those given in values (empty ones dropped), plus
<role>Id, <role>SecretName and <role>SecretNamespace from the class's secrets block, for
"admin" and "user", unless given explicitly. The provisioner reads keys case-insensitively,
so "given" is decided case-insensitively too.
Call with (dict "root" $ "class" $class).
*/}}
{{- define "rbd-provisioner.storageClassParameters" -}}
{{- $root := .root }}
{{- $params := dict }}
{{- $given := dict }}
{{- range $key, $value := (.class.parameters | default dict) }}
{{- if not (or (kindIs "invalid" $value) (eq (toString $value) "")) }}
{{- $_ := set $params $key (toString $value) }}
{{- $_ := set $given (lower $key) true }}
{{- end }}
{{- end }}
{{- $secrets := .class.secrets | default dict }}
{{- range $role := list "admin" "user" }}
{{- $secret := get $secrets $role | default dict }}
{{- $nameGiven := hasKey $given (printf "%ssecretname" $role) }}
{{- if and $secret.name (not $nameGiven) }}
{{- $_ := set $params (printf "%sSecretName" $role) $secret.name }}
{{- end }}
{{- /* Never leave the namespace to the provisioner's default: the RBAC below must name it. */}}
{{- if and (or $secret.name $nameGiven) (not (hasKey $given (printf "%ssecretnamespace" $role))) }}
{{- $_ := set $params (printf "%sSecretNamespace" $role) (include "rbd-provisioner.secretNamespace" (dict "root" $root "secret" $secret)) }}
{{- end }}
{{- if and $secret.id (not (hasKey $given (printf "%sid" $role))) }}
{{- $_ := set $params (printf "%sId" $role) (toString $secret.id) }}
{{- end }}
{{- end }}
{{- toYaml $params }}
{{- end }}

{{/*
The Secrets the controller touches, as YAML {read: {namespace: [name, ...]}, managed: [name, ...]}, taken from each
class's effective parameters (so explicit keys in any case are honoured). Classes with create: false count too:
their Secrets are read all the same.
- read: each class's admin Secret, and its user Secret unless volumeSource is "rbd" (the controller reads it to give
  ceph-csi's node plugin a Secret it reads as userId).
- managed: the node Secret the controller may keep in the release namespace for each user Secret, named as
  src/rbd/node-secret.ts managedSecretName does: rbd-node-<ns>-<name>-<first 8 hex of
  sha256("<provisionerName>\n<ns>\n<name>\n<userId>")>, the readable part cut to 235 characters.
*/}}
{{- define "rbd-provisioner.secretAccess" -}}
{{- $root := . }}
{{- $read := dict }}
{{- $managed := list }}
{{- range $index, $class := .Values.storageClasses }}
{{- $params := include "rbd-provisioner.storageClassParameters" (dict "root" $root "class" $class) | fromYaml }}
{{- $p := dict }}
{{- range $key, $value := $params }}{{ $_ := set $p (lower $key) (toString $value) }}{{ end }}
{{- $name := get $p "adminsecretname" }}
{{- if not $name }}
{{- fail (printf "storageClasses[%d] (%s): no admin Secret: set secrets.admin.name (or parameters.adminSecretName)" $index $class.name) }}
{{- end }}
{{- $namespace := get $p "adminsecretnamespace" | default $root.Release.Namespace }}
{{- $_ := set $read $namespace (append (get $read $namespace | default list) $name | uniq | sortAlpha) }}
{{- $userName := get $p "usersecretname" }}
{{- if and $userName (ne (lower (get $p "volumesource")) "rbd") }}
{{- $userNamespace := get $p "usersecretnamespace" | default $root.Release.Namespace }}
{{- $_ := set $read $userNamespace (append (get $read $userNamespace | default list) $userName | uniq | sortAlpha) }}
{{- $userId := get $p "userid" | default (get $p "adminid") | default "admin" }}
{{- $hash := printf "%s\n%s\n%s\n%s" $root.Values.provisionerName $userNamespace $userName $userId | sha256sum | trunc 8 }}
{{- $readable := regexReplaceAll "[-.]+$" (printf "%s-%s" $userNamespace $userName | trunc 235) "" }}
{{- $managed = append $managed (printf "rbd-node-%s-%s" $readable $hash) | uniq | sortAlpha }}
{{- end }}
{{- end }}
{{- /* The retired provisioner's admin Secrets (takeOver): its PVs' deletes read them. */}}
{{- range $secret := $root.Values.takeOver.adminSecrets }}
{{- $_ := set $read $secret.namespace (append (get $read $secret.namespace | default list) $secret.name | uniq | sortAlpha) }}
{{- end }}
{{- toYaml (dict "read" $read "managed" $managed) }}
{{- end }}

{{/* ---- ceph-csi's config map (cephCsiConfig) ---- */}}
{{/* Namespace of ceph-csi's config map: cephCsiConfig.namespace, else the release namespace. */}}
{{- define "rbd-provisioner.cephCsiConfigNamespace" -}}
{{- .Values.cephCsiConfig.namespace | default .Release.Namespace -}}
{{- end }}

{{/* ---- scheduling ---- */}}
{{/*
The Pod's affinity: `affinity` when set (it replaces the default whole); otherwise, with more than one
replica, an anti-affinity by hostname as podAntiAffinity asks (preferred: spread when the nodes allow it;
required: never two replicas on one node), so that one node going down does not take every replica.
*/}}
{{- define "rbd-provisioner.affinity" -}}
{{- if .Values.affinity }}
{{- toYaml .Values.affinity }}
{{- else if and (gt (int .Values.replicaCount) 1) (ne .Values.podAntiAffinity "none") }}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" (dict "matchLabels" (include "rbd-provisioner.selectorLabels" . | fromYaml)) }}
podAntiAffinity:
{{- if eq .Values.podAntiAffinity "required" }}
  requiredDuringSchedulingIgnoredDuringExecution:
    {{- toYaml (list $term) | nindent 4 }}
{{- else }}
  preferredDuringSchedulingIgnoredDuringExecution:
    {{- toYaml (list (dict "weight" 100 "podAffinityTerm" $term)) | nindent 4 }}
{{- end }}
{{- end }}
{{- end }}

{{/* topologySpreadConstraints, each given this release's Pods as labelSelector unless it names its own. */}}
{{- define "rbd-provisioner.topologySpreadConstraints" -}}
{{- $selector := dict "matchLabels" (include "rbd-provisioner.selectorLabels" . | fromYaml) }}
{{- $constraints := list }}
{{- range .Values.topologySpreadConstraints }}
{{- $constraint := deepCopy . }}
{{- if not (hasKey $constraint "labelSelector") }}{{ $_ := set $constraint "labelSelector" $selector }}{{ end }}
{{- $constraints = append $constraints $constraint }}
{{- end }}
{{- toYaml $constraints }}
{{- end }}

{{/*
Labels of the `helm test` hook's objects: the release's, under another app.kubernetes.io/name, so that the
Deployment's selector, the PodDisruptionBudget, the anti-affinity and the metrics Service never count the
test Pod as a replica (a PodDisruptionBudget matching a Pod without a controller blocks every eviction).
*/}}
{{- define "rbd-provisioner.testLabels" -}}
{{- $labels := include "rbd-provisioner.labels" . | fromYaml }}
{{- $_ := set $labels "app.kubernetes.io/name" (printf "%s-test" (include "rbd-provisioner.name" .)) }}
{{- $_ := set $labels "app.kubernetes.io/component" "test" }}
{{- toYaml $labels }}
{{- end }}
