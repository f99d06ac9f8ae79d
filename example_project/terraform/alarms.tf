locals {
  apprunner_dimensions = {
    ServiceName = one(aws_apprunner_service.app[*].service_name)
    ServiceID   = one(aws_apprunner_service.app[*].service_id)
  }
  # Thresholds the alarms below use; docs/deploying.md explains each.
  error_rate_threshold_percent = 1
  latency_threshold_ms         = 500
  server_errors_per_minute     = 10
}

resource "aws_sns_topic" "alarms" {
  name = "${var.service_name}-alarms"

  # checkov:skip=CKV_AWS_26:CloudWatch alarms cannot publish to a topic encrypted with the AWS-managed key; alarm messages hold no secrets.
}

resource "aws_sns_topic_subscription" "email" {
  count     = var.alarm_email == "" ? 0 : 1
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# App Runner's metrics (ecs_express.tf has the same alarms on django-prodkit's metrics for ECS Express Mode).
# Share of requests answered 5xx over 5 minutes (4xx are the clients' mistakes, not an outage).
resource "aws_cloudwatch_metric_alarm" "error_rate" {
  count               = local.apprunner ? 1 : 0
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
      namespace   = "AWS/AppRunner"
      metric_name = "5xxStatusResponses"
      dimensions  = local.apprunner_dimensions
      period      = 300
      stat        = "Sum"
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/AppRunner"
      metric_name = "Requests"
      dimensions  = local.apprunner_dimensions
      period      = 300
      stat        = "Sum"
    }
  }
}

# Average response time over 500 ms for 3 minutes in a row.
resource "aws_cloudwatch_metric_alarm" "latency" {
  count               = local.apprunner ? 1 : 0
  alarm_name          = "${var.service_name}-response-time"
  alarm_description   = "Average response time above 500 ms for 3 consecutive minutes."
  namespace           = "AWS/AppRunner"
  metric_name         = "RequestLatency"
  dimensions          = local.apprunner_dimensions
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.latency_threshold_ms
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# More than 10 server errors within one minute.
resource "aws_cloudwatch_metric_alarm" "server_errors" {
  count               = local.apprunner ? 1 : 0
  alarm_name          = "${var.service_name}-5xx"
  alarm_description   = "More than 10 responses with a 5xx status in one minute."
  namespace           = "AWS/AppRunner"
  metric_name         = "5xxStatusResponses"
  dimensions          = local.apprunner_dimensions
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.server_errors_per_minute
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}
