provider "helm" {
  kubernetes {
    host                   = var.kube_host
    cluster_ca_certificate = var.kube_ca
    token                  = var.kube_token
  }
}

locals {
  chart_path = var.chart_path != "" ? var.chart_path : "${path.module}/../helm/anomaly-detector"

  # repository[:tag]; a registry port (host:5000/name) is not a tag.
  image_parts      = regex("^(.+?)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?$", var.image)
  image_repository = local.image_parts[0]
  image_tag        = local.image_parts[1] == null ? "" : local.image_parts[1]

  values = {
    fullnameOverride = var.release_name
    replicaCount     = var.replicas
    image = {
      repository = local.image_repository
      tag        = local.image_tag
    }
    config         = var.env
    existingSecret = var.existing_secret
  }
}

resource "helm_release" "anomaly_detector" {
  name             = var.release_name
  namespace        = var.namespace
  create_namespace = true
  chart            = local.chart_path

  # Values as YAML documents rather than `set` blocks: settings such as TENANTS (commas) or
  # TENANT_API_KEYS (JSON) would be split by Helm's --set syntax.
  values = concat(
    [yamlencode(local.values)],
    length(var.secret_env) > 0 ? [yamlencode({ secret = { create = true, values = var.secret_env } })] : [],
    var.values,
  )

  # Fail the apply when the migration Job or the rollout fails, and roll back.
  wait            = true
  atomic          = true
  cleanup_on_fail = true
  timeout         = var.timeout_seconds
}
