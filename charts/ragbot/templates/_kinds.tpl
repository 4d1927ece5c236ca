{{/*
Kind -> resource of the kinds a cleanup entry may name, as k8s/resources.py's table
(namespaced kinds only). tests/chart checks this table equals the code's. A kind not
listed here (a custom resource) needs rbac.extraRules.
*/}}
{{- define "ragbot.kindTable" -}}
Backup: {group: "velero.io", plural: backups}
Restore: {group: "velero.io", plural: restores}
DownloadRequest: {group: "velero.io", plural: downloadrequests}
DeleteBackupRequest: {group: "velero.io", plural: deletebackuprequests}
BackupStorageLocation: {group: "velero.io", plural: backupstoragelocations}
Schedule: {group: "velero.io", plural: schedules}
Pod: {group: "", plural: pods}
PersistentVolumeClaim: {group: "", plural: persistentvolumeclaims}
Secret: {group: "", plural: secrets}
ConfigMap: {group: "", plural: configmaps}
Lease: {group: "coordination.k8s.io", plural: leases}
Deployment: {group: "apps", plural: deployments}
Service: {group: "", plural: services}
ServiceAccount: {group: "", plural: serviceaccounts}
Endpoints: {group: "", plural: endpoints}
StatefulSet: {group: "apps", plural: statefulsets}
ReplicaSet: {group: "apps", plural: replicasets}
DaemonSet: {group: "apps", plural: daemonsets}
Job: {group: "batch", plural: jobs}
CronJob: {group: "batch", plural: cronjobs}
Ingress: {group: "networking.k8s.io", plural: ingresses}
NetworkPolicy: {group: "networking.k8s.io", plural: networkpolicies}
PodDisruptionBudget: {group: "policy", plural: poddisruptionbudgets}
HorizontalPodAutoscaler: {group: "autoscaling", plural: horizontalpodautoscalers}
Role: {group: "rbac.authorization.k8s.io", plural: roles}
RoleBinding: {group: "rbac.authorization.k8s.io", plural: rolebindings}
{{- end }}

{{/* The kinds Enterprise RAG's Helm releases ship (k8s/permissions.py HELM_RELEASE_KINDS). */}}
{{- define "ragbot.helmReleaseKinds" -}}
[ConfigMap, Deployment, Secret, Service, StatefulSet]
{{- end }}
