variable "settings" {
  description = "What both regions share: names, container, roles, scaling, metrics and alarm thresholds (the root's local.express_service)."
  type = object({
    service_name                 = string
    container_port               = number
    health_check_path            = string
    cpu                          = string
    memory                       = string
    environment                  = map(string)
    execution_role_arn           = string
    infrastructure_role_arn      = string
    task_role_arn                = string
    min_tasks                    = number
    max_tasks                    = number
    cpu_target                   = number
    log_retention_days           = number
    metric_namespace             = string
    metric_dimensions            = map(string)
    error_rate_threshold_percent = number
    latency_threshold_ms         = number
    server_errors_per_minute     = number
  })
}

variable "image" {
  description = "Container image (repository URL and tag, in this module's region) of the first deployment; the deploy workflow rolls out later ones."
  type        = string
}

variable "secrets" {
  description = "Secrets Manager ARNs in this module's region, by environment variable name."
  type        = map(string)
}

variable "alarm_topic_arn" {
  description = "SNS topic in this module's region that the alarms notify."
  type        = string
}
