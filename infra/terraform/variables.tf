variable "kube_host" {
  description = "Kubernetes API server URL, e.g. https://1.2.3.4:6443."
  type        = string
}

variable "kube_ca" {
  description = "The cluster's CA certificate (PEM) the API server is verified with."
  type        = string
}

variable "kube_token" {
  description = "Bearer token of a service account allowed to install the chart in var.namespace."
  type        = string
  sensitive   = true
}

variable "env" {
  description = "The service's non-secret settings (variable name → value), rendered into the chart's ConfigMap: ENVIRONMENT, TENANTS, LOKI_PUSH_URL, ..."
  type        = map(string)
  default     = {}
}

variable "secret_env" {
  description = "The service's secret settings (DATABASE_URL, TENANT_API_KEYS, SLACK_WEBHOOK_URL, TENANT_SLACK_WEBHOOKS, METRICS_TOKEN, ...), rendered into the chart's Secret. Leave empty when existing_secret holds them."
  type        = map(string)
  default     = {}
  sensitive   = true
}

variable "existing_secret" {
  description = "Name of an existing Secret in var.namespace whose keys are variable names (e.g. DATABASE_URL); used with envFrom."
  type        = string
  default     = ""
}

variable "image" {
  description = "Container image, repository[:tag], e.g. registry.example.com/anomaly-detector:0.1.0. Without a tag, the chart's appVersion."
  type        = string
  default     = "anomaly-detector"
}

variable "replicas" {
  description = "Replicas of the service. Several are safe: PostgreSQL advisory locks and SKIP LOCKED outboxes."
  type        = number
  default     = 2

  validation {
    condition     = var.replicas >= 1 && floor(var.replicas) == var.replicas
    error_message = "replicas must be a whole number >= 1."
  }
}

variable "namespace" {
  description = "Namespace to install into (created when missing)."
  type        = string
  default     = "anomaly-detector"
}

variable "release_name" {
  description = "Helm release name; also the name of the Deployment and Service."
  type        = string
  default     = "anomaly-detector"
}

variable "chart_path" {
  description = "Path of the chart. Default: the chart in this repository."
  type        = string
  default     = ""
}

variable "values" {
  description = "More chart values (a YAML document each), applied after the module's own, e.g. file(\"prod-values.yaml\")."
  type        = list(string)
  default     = []
}

variable "timeout_seconds" {
  description = "How long Helm waits for the migration Job and the rollout."
  type        = number
  default     = 600
}
