# Amazon ECS Express Mode (var.platform = "ecs_express"): one resource gives the container a Fargate service, an
# HTTPS Application Load Balancer with its certificate, security groups and auto scaling. AWS's own answer for
# accounts that cannot create App Runner services. modules/express_service holds the service, its cluster, log group
# and alarms; this file runs it in var.region, multi_region.tf in var.secondary_region.
locals {
  # The dimensions django-prodkit puts on its service-wide metrics: the service and var.cloudwatch_dimensions, which
  # the container gets as CLOUDWATCH_DIMENSIONS. An alarm naming fewer or more matches no series.
  # METRICS_INSTANCE (a dimension per task) defeats fixed alarms: the system check prodkit.W150 warns about it.
  prodkit_dimensions = merge({ Service = var.service_name }, var.cloudwatch_dimensions)

  # Everything both regions' services share (modules/express_service's `settings`).
  express_service = {
    service_name                 = var.service_name
    container_port               = local.container_port
    health_check_path            = local.health_check_path
    cpu                          = var.cpu
    memory                       = var.memory
    environment                  = local.app_environment
    execution_role_arn           = one(aws_iam_role.execution[*].arn)
    infrastructure_role_arn      = one(aws_iam_role.infrastructure[*].arn)
    task_role_arn                = aws_iam_role.instance.arn
    min_tasks                    = var.min_instances
    max_tasks                    = var.max_instances
    cpu_target                   = var.express_cpu_target
    log_retention_days           = var.log_retention_days
    metric_namespace             = var.service_name
    metric_dimensions            = local.prodkit_dimensions
    error_rate_threshold_percent = local.error_rate_threshold_percent
    latency_threshold_ms         = local.latency_threshold_ms
    server_errors_per_minute     = local.server_errors_per_minute
  }
}

module "express" {
  source = "./modules/express_service"
  count  = local.express ? 1 : 0

  settings        = local.express_service
  image           = "${aws_ecr_repository.app.repository_url}:${var.image_tag}"
  secrets         = local.app_secrets
  alarm_topic_arn = aws_sns_topic.alarms.arn

  # Kept until the service is gone: without its roles a deleting service hangs in DRAINING.
  depends_on = [
    aws_iam_role_policy_attachment.execution,
    aws_iam_role_policy.execution_secrets,
    aws_iam_role_policy_attachment.infrastructure,
  ]
}

# The resources lived in this file before the module: moved, not replaced. Replacing the service would destroy and
# re-create it under the same name, which the provider refuses (hashicorp/terraform-provider-aws#47438).
moved {
  from = aws_ecs_cluster.app[0]
  to   = module.express[0].aws_ecs_cluster.app
}

moved {
  from = aws_cloudwatch_log_group.app[0]
  to   = module.express[0].aws_cloudwatch_log_group.app
}

moved {
  from = aws_ecs_express_gateway_service.app[0]
  to   = module.express[0].aws_ecs_express_gateway_service.app
}

moved {
  from = aws_cloudwatch_metric_alarm.express_error_rate[0]
  to   = module.express[0].aws_cloudwatch_metric_alarm.error_rate
}

moved {
  from = aws_cloudwatch_metric_alarm.express_latency[0]
  to   = module.express[0].aws_cloudwatch_metric_alarm.latency
}

moved {
  from = aws_cloudwatch_metric_alarm.express_server_errors[0]
  to   = module.express[0].aws_cloudwatch_metric_alarm.server_errors
}
