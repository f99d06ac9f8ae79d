locals {
  apprunner_metric = ["AWS/AppRunner"]
  service_dims     = ["ServiceName", local.apprunner_dimensions.ServiceName, "ServiceID", local.apprunner_dimensions.ServiceID]
}

# App Runner's metrics; on ECS Express Mode, `manage.py cloudwatch_dashboard` builds one from django-prodkit's.
resource "aws_cloudwatch_dashboard" "app" {
  count          = local.apprunner ? 1 : 0
  dashboard_name = var.service_name
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title  = "Requests and responses by class"
          region = var.region
          stat   = "Sum"
          period = 60
          metrics = [
            concat(local.apprunner_metric, ["Requests"], local.service_dims),
            concat(local.apprunner_metric, ["2xxStatusResponses"], local.service_dims),
            concat(local.apprunner_metric, ["4xxStatusResponses"], local.service_dims),
            concat(local.apprunner_metric, ["5xxStatusResponses"], local.service_dims),
          ]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title  = "Response time (ms)"
          region = var.region
          period = 60
          metrics = [
            concat(local.apprunner_metric, ["RequestLatency"], local.service_dims, [{ stat = "p50", label = "p50" }]),
            concat(local.apprunner_metric, ["RequestLatency"], local.service_dims, [{ stat = "p95", label = "p95" }]),
            concat(local.apprunner_metric, ["RequestLatency"], local.service_dims, [{ stat = "p99", label = "p99" }]),
          ]
          annotations = { horizontal = [{ label = "alarm", value = local.latency_threshold_ms }] }
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 8, height = 6
        properties = {
          title  = "Instances"
          region = var.region
          stat   = "Maximum"
          period = 60
          metrics = [
            concat(local.apprunner_metric, ["ActiveInstances"], local.service_dims),
          ]
        }
      },
      {
        type = "metric", x = 8, y = 6, width = 8, height = 6
        properties = {
          title  = "CPU and memory (%)"
          region = var.region
          stat   = "Average"
          period = 60
          metrics = [
            concat(local.apprunner_metric, ["CPUUtilization"], local.service_dims),
            concat(local.apprunner_metric, ["MemoryUtilization"], local.service_dims),
          ]
        }
      },
      {
        type = "metric", x = 16, y = 6, width = 8, height = 6
        properties = {
          title  = "CloudFront cache hit rate (%) and errors"
          region = "us-east-1"
          stat   = "Average"
          period = 300
          metrics = [
            ["AWS/CloudFront", "CacheHitRate", "DistributionId", aws_cloudfront_distribution.app.id, "Region", "Global"],
            ["AWS/CloudFront", "5xxErrorRate", "DistributionId", aws_cloudfront_distribution.app.id, "Region", "Global"],
          ]
        }
      },
      {
        type = "alarm", x = 0, y = 12, width = 24, height = 3
        properties = {
          title = "Alarms"
          alarms = [
            one(aws_cloudwatch_metric_alarm.error_rate[*].arn),
            one(aws_cloudwatch_metric_alarm.latency[*].arn),
            one(aws_cloudwatch_metric_alarm.server_errors[*].arn),
          ]
        }
      },
    ]
  })
}
