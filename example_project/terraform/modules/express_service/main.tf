# One Amazon ECS Express Mode service with its cluster, log group and the three alarms on django-prodkit's own
# metrics. The root module uses it once per region (ecs_express.tf, and multi_region.tf for the second region).
resource "aws_ecs_cluster" "app" {
  name = var.settings.service_name

  # checkov:skip=CKV_AWS_65:Container Insights is billed per metric; django-prodkit publishes the service's own request metrics (ENABLE_CLOUDWATCH_METRICS).
}

resource "aws_cloudwatch_log_group" "app" {
  name              = "/ecs/${var.settings.service_name}"
  retention_in_days = var.settings.log_retention_days

  # checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts at rest by default; a customer-managed KMS key is an organisation's choice, not the example's.
  # checkov:skip=CKV_AWS_338:Retention is var.settings.log_retention_days (30 by default): request logs, not an audit trail.
}

resource "aws_ecs_express_gateway_service" "app" {
  service_name            = var.settings.service_name
  cluster                 = aws_ecs_cluster.app.name
  execution_role_arn      = var.settings.execution_role_arn
  infrastructure_role_arn = var.settings.infrastructure_role_arn
  task_role_arn           = var.settings.task_role_arn
  cpu                     = var.settings.cpu
  memory                  = var.settings.memory
  # The load balancer probes each task by its IP address; HealthCheckMiddleware answers before host validation.
  health_check_path     = var.settings.health_check_path
  wait_for_steady_state = true

  primary_container {
    image          = var.image
    container_port = var.settings.container_port

    aws_logs_configuration = [{
      log_group         = aws_cloudwatch_log_group.app.name
      log_stream_prefix = var.settings.service_name
    }]

    dynamic "environment" {
      for_each = var.settings.environment
      content {
        name  = environment.key
        value = environment.value
      }
    }

    dynamic "secret" {
      for_each = var.secrets
      content {
        name       = secret.key
        value_from = secret.value
      }
    }
  }

  # App Runner's intent: at least one task always warm. App Runner scales on requests in flight, which ECS does not
  # measure; a sync gunicorn busy with requests is busy on CPU. Both values are set: left out, the API fills in
  # AVERAGE_CPU and 60 and the provider reports an inconsistent result (hashicorp/terraform-provider-aws#49511).
  # A change of these values alone never reaches AWS: the provider's update ignores scaling_target when deciding
  # whether anything changed; docs/deploying.md gives the workaround.
  scaling_target = [{
    min_task_count            = var.settings.min_tasks
    max_task_count            = var.settings.max_tasks
    auto_scaling_metric       = "AVERAGE_CPU"
    auto_scaling_target_value = var.settings.cpu_target
  }]

  # The deploy workflow rolls out new images (immutable tags); Terraform owns everything else.
  lifecycle {
    ignore_changes = [primary_container[0].image]
  }
}

# Without App Runner's metrics, the alarms watch django-prodkit's own (ENABLE_CLOUDWATCH_METRICS): the same
# thresholds on RequestCount, Status5xx and ResponseTime, with exactly the dimensions the kit publishes.
resource "aws_cloudwatch_metric_alarm" "error_rate" {
  alarm_name          = "${var.settings.service_name}-error-rate"
  alarm_description   = "More than ${var.settings.error_rate_threshold_percent} % of requests failed with a 5xx over 5 minutes."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.settings.error_rate_threshold_percent
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]

  metric_query {
    id          = "error_rate"
    expression  = "IF(requests > 0, 100 * errors / requests, 0)"
    label       = "5xx error rate (%)"
    return_data = true
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = var.settings.metric_namespace
      metric_name = "Status5xx"
      dimensions  = var.settings.metric_dimensions
      period      = 300
      stat        = "Sum"
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = var.settings.metric_namespace
      metric_name = "RequestCount"
      dimensions  = var.settings.metric_dimensions
      period      = 300
      stat        = "Sum"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "latency" {
  alarm_name          = "${var.settings.service_name}-response-time"
  alarm_description   = "Average response time above ${var.settings.latency_threshold_ms} ms for 3 consecutive minutes."
  namespace           = var.settings.metric_namespace
  metric_name         = "ResponseTime"
  dimensions          = var.settings.metric_dimensions
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.settings.latency_threshold_ms
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "server_errors" {
  alarm_name          = "${var.settings.service_name}-5xx"
  alarm_description   = "More than ${var.settings.server_errors_per_minute} responses with a 5xx status in one minute."
  namespace           = var.settings.metric_namespace
  metric_name         = "Status5xx"
  dimensions          = var.settings.metric_dimensions
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.settings.server_errors_per_minute
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
}
