# Amazon ECS Express Mode (var.platform = "ecs_express"): one resource gives the container a Fargate service, an
# HTTPS Application Load Balancer with its certificate, security groups and auto scaling. AWS's own answer for
# accounts that cannot create App Runner services.
resource "aws_ecs_cluster" "app" {
  count = local.express ? 1 : 0
  name  = var.service_name
}

# App Runner ships stdout to CloudWatch Logs by itself; here the JSON lines go to this group.
resource "aws_cloudwatch_log_group" "app" {
  count             = local.express ? 1 : 0
  name              = "/ecs/${var.service_name}"
  retention_in_days = var.log_retention_days
}

resource "aws_ecs_express_gateway_service" "app" {
  count                   = local.express ? 1 : 0
  service_name            = var.service_name
  cluster                 = aws_ecs_cluster.app[0].name
  execution_role_arn      = aws_iam_role.execution[0].arn
  infrastructure_role_arn = aws_iam_role.infrastructure[0].arn
  task_role_arn           = aws_iam_role.instance.arn
  cpu                     = var.cpu
  memory                  = var.memory
  # The load balancer probes each task by its IP address; HealthCheckMiddleware answers before host validation.
  health_check_path     = local.health_check_path
  wait_for_steady_state = true

  primary_container {
    image          = "${aws_ecr_repository.app.repository_url}:${var.image_tag}"
    container_port = local.container_port

    aws_logs_configuration = [{
      log_group         = aws_cloudwatch_log_group.app[0].name
      log_stream_prefix = var.service_name
    }]

    dynamic "environment" {
      for_each = local.app_environment
      content {
        name  = environment.key
        value = environment.value
      }
    }

    dynamic "secret" {
      for_each = local.app_secrets
      content {
        name       = secret.key
        value_from = secret.value
      }
    }
  }

  # App Runner's intent: at least one task always warm, at most ten. App Runner scales on requests in flight, which
  # ECS does not measure; a sync gunicorn busy with requests is busy on CPU, so scale out above that average.
  scaling_target = [{
    min_task_count            = var.min_instances
    max_task_count            = var.max_instances
    auto_scaling_metric       = "AVERAGE_CPU"
    auto_scaling_target_value = var.express_cpu_target
  }]

  # The deploy workflow rolls out new images (immutable tags); Terraform owns everything else.
  lifecycle {
    ignore_changes = [primary_container[0].image]
  }

  # Kept until the service is gone: without its roles a deleting service hangs in DRAINING.
  depends_on = [
    aws_iam_role_policy_attachment.execution,
    aws_iam_role_policy.execution_secrets,
    aws_iam_role_policy_attachment.infrastructure,
  ]
}

# Without App Runner's metrics, the alarms watch django-prodkit's own (ENABLE_CLOUDWATCH_METRICS): the same
# thresholds on RequestCount, Status5xx and ResponseTime in the service's namespace.
locals {
  prodkit_dimensions = { Service = var.service_name }
}

resource "aws_cloudwatch_metric_alarm" "express_error_rate" {
  count               = local.express ? 1 : 0
  alarm_name          = "${var.service_name}-error-rate"
  alarm_description   = "More than 1 % of requests failed with a 5xx over 5 minutes."
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.error_rate_threshold_percent
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "error_rate"
    expression  = "IF(requests > 0, 100 * errors / requests, 0)"
    label       = "5xx error rate (%)"
    return_data = true
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = var.service_name
      metric_name = "Status5xx"
      dimensions  = local.prodkit_dimensions
      period      = 300
      stat        = "Sum"
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = var.service_name
      metric_name = "RequestCount"
      dimensions  = local.prodkit_dimensions
      period      = 300
      stat        = "Sum"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "express_latency" {
  count               = local.express ? 1 : 0
  alarm_name          = "${var.service_name}-response-time"
  alarm_description   = "Average response time above 500 ms for 3 consecutive minutes."
  namespace           = var.service_name
  metric_name         = "ResponseTime"
  dimensions          = local.prodkit_dimensions
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.latency_threshold_ms
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "express_server_errors" {
  count               = local.express ? 1 : 0
  alarm_name          = "${var.service_name}-5xx"
  alarm_description   = "More than 10 responses with a 5xx status in one minute."
  namespace           = var.service_name
  metric_name         = "Status5xx"
  dimensions          = local.prodkit_dimensions
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.server_errors_per_minute
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}
