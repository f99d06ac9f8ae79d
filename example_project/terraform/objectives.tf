# Burn-rate alarms for the service level objectives in settings.py's PRODKIT["OBJECTIVES"], on django-prodkit's own
# CloudWatch metrics. objectives.json is `manage.py prodkit_monitoring cloudwatch -o terraform/objectives.json`, run
# again whenever the objectives (or SERVICE_NAME) change; docs/objectives.md explains the alarms.
locals {
  objectives = jsondecode(file("${path.module}/objectives.json"))
}

# One alarm per window: silent on their own, they feed the composite alarms below.
resource "aws_cloudwatch_metric_alarm" "objective_window" {
  for_each            = var.enable_cloudwatch_metrics ? { for alarm in local.objectives.alarms : alarm.AlarmName => alarm } : {}
  alarm_name          = each.key
  alarm_description   = each.value.AlarmDescription
  actions_enabled     = each.value.ActionsEnabled
  comparison_operator = each.value.ComparisonOperator
  threshold           = each.value.Threshold
  evaluation_periods  = each.value.EvaluationPeriods
  datapoints_to_alarm = each.value.DatapointsToAlarm
  treat_missing_data  = each.value.TreatMissingData

  dynamic "metric_query" {
    for_each = each.value.Metrics
    content {
      id          = metric_query.value.Id
      expression  = try(metric_query.value.Expression, null)
      label       = try(metric_query.value.Label, null)
      return_data = metric_query.value.ReturnData

      dynamic "metric" {
        for_each = can(metric_query.value.MetricStat) ? [metric_query.value.MetricStat] : []
        content {
          namespace   = metric.value.Metric.Namespace
          metric_name = metric.value.Metric.MetricName
          dimensions  = { for dimension in metric.value.Metric.Dimensions : dimension.Name => dimension.Value }
          period      = metric.value.Period
          stat        = metric.value.Stat
        }
      }
    }
  }
}

# Page and ticket per objective: both windows of a pair in alarm. These notify the alarms topic; a ticket alarm
# stays quiet while its objective's page alarm fires, so it is created after the page alarms.
locals {
  objective_composites = { for alarm in local.objectives.composite_alarms : alarm.AlarmName => merge(alarm, {
    severity = { for tag in alarm.Tags : tag.Key => tag.Value }["severity"]
  }) if var.enable_cloudwatch_metrics }
}

resource "aws_cloudwatch_composite_alarm" "objective_page" {
  for_each          = { for name, alarm in local.objective_composites : name => alarm if alarm.severity == "page" }
  alarm_name        = each.key
  alarm_description = each.value.AlarmDescription
  alarm_rule        = each.value.AlarmRule
  alarm_actions     = [aws_sns_topic.alarms.arn]
  ok_actions        = [aws_sns_topic.alarms.arn]

  depends_on = [aws_cloudwatch_metric_alarm.objective_window]
}

resource "aws_cloudwatch_composite_alarm" "objective_ticket" {
  for_each          = { for name, alarm in local.objective_composites : name => alarm if alarm.severity != "page" }
  alarm_name        = each.key
  alarm_description = each.value.AlarmDescription
  alarm_rule        = each.value.AlarmRule
  alarm_actions     = [aws_sns_topic.alarms.arn]
  ok_actions        = [aws_sns_topic.alarms.arn]

  depends_on = [aws_cloudwatch_composite_alarm.objective_page]
}
