output "release_name" {
  description = "Helm release name."
  value       = helm_release.anomaly_detector.name
}

output "namespace" {
  description = "Namespace of the release."
  value       = helm_release.anomaly_detector.namespace
}

output "status" {
  description = "Status of the release (deployed, failed, ...)."
  value       = helm_release.anomaly_detector.status
}

output "chart_version" {
  description = "Version of the chart installed."
  value       = helm_release.anomaly_detector.metadata[0].version
}

output "app_version" {
  description = "Application version of the chart installed."
  value       = helm_release.anomaly_detector.metadata[0].app_version
}

output "service_url" {
  description = "In-cluster URL of the service (port 80 → the container's 8000)."
  value       = "http://${var.release_name}.${var.namespace}.svc.cluster.local"
}
